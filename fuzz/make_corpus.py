#!/usr/bin/env python3
"""Writes the HTTP/1.1 corpus: valid and adversarial requests and responses, one message
stream per file, into fuzz/corpus/request/ and fuzz/corpus/response/.

The same files seed the fuzz targets and feed the differential test against h11
(tests/http/differential.py). Names say what each file is; files are regenerated
whole, so edit this script rather than the files. Crashers found by fuzzing live in
fuzz/corpus/*/crash-* and are kept.

usage: fuzz/make_corpus.py [OUTDIR]   (default: fuzz/corpus next to this script)
"""
import os
import re
import sys

H = "Host: example.com\r\n"


def req(head_lines, body="", start="POST / HTTP/1.1"):
    return start + "\r\n" + "".join(l + "\r\n" for l in head_lines) + "\r\n" + body


def chunked_bodies():
    """(name, chunked body) pairs, valid and not."""
    return [
        ("simple", "5\r\nhello\r\n0\r\n\r\n"),
        ("two-chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        ("upper-hex", "A\r\n0123456789\r\n0\r\n\r\n"),
        ("leading-zeros", "0005\r\nhello\r\n0000\r\n\r\n"),
        ("ext-token", "5;name=value\r\nhello\r\n0\r\n\r\n"),
        ("ext-bare", "5;flag\r\nhello\r\n0;last\r\n\r\n"),
        ("ext-quoted", "5;a=\"x y\"\r\nhello\r\n0\r\n\r\n"),
        ("ext-quoted-escape", "5;a=\"x\\\"y\"\r\nhello\r\n0\r\n\r\n"),
        ("ext-many", "5;a;b=c;d=\"e\"\r\nhello\r\n0\r\n\r\n"),
        ("trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n"),
        ("empty", "0\r\n\r\n"),
        ("size-0x", "0x5\r\nhello\r\n0\r\n\r\n"),
        ("size-space-before", " 5\r\nhello\r\n0\r\n\r\n"),
        ("size-space-after", "5 \r\nhello\r\n0\r\n\r\n"),
        ("size-tab-after", "5\t\r\nhello\r\n0\r\n\r\n"),
        ("size-space-ext", "5 ;a\r\nhello\r\n0\r\n\r\n"),
        ("size-empty", "\r\nhello\r\n0\r\n\r\n"),
        ("size-nonhex", "5g\r\nhello\r\n0\r\n\r\n"),
        ("size-negative", "-5\r\nhello\r\n0\r\n\r\n"),
        ("size-plus", "+5\r\nhello\r\n0\r\n\r\n"),
        ("size-overflow", "fffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        ("size-overflow-wrap", "10000000000000005\r\nhello\r\n0\r\n\r\n"),
        ("size-lf-only", "5\nhello\r\n0\r\n\r\n"),
        ("size-cr-only", "5\rhello\r\n0\r\n\r\n"),
        ("ext-lf-only", "5;a\nhello\r\n0\r\n\r\n"),
        ("ext-empty-name", "5;\r\nhello\r\n0\r\n\r\n"),
        ("ext-empty-value", "5;a=\r\nhello\r\n0\r\n\r\n"),
        ("ext-space", "5; a=b\r\nhello\r\n0\r\n\r\n"),
        ("ext-unterminated-quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n"),
        ("ext-ctl", "5;a=b\x01\r\nhello\r\n0\r\n\r\n"),
        ("data-longer", "3\r\nhello\r\n0\r\n\r\n"),
        ("data-shorter", "7\r\nhello\r\n0\r\n\r\n"),
        ("data-lf-only", "5\r\nhello\n0\r\n\r\n"),
        ("data-no-crlf", "5\r\nhello0\r\n\r\n"),
        ("last-lf-only", "5\r\nhello\r\n0\n\n"),
        ("last-no-final-crlf", "5\r\nhello\r\n0\r\n"),
        ("trailer-lf", "5\r\nhello\r\n0\r\nX: y\n\r\n"),
        ("trailer-fold", "5\r\nhello\r\n0\r\nX: y\r\n z\r\n\r\n"),
        ("trailer-space-colon", "5\r\nhello\r\n0\r\nX : y\r\n\r\n"),
        ("trailer-no-colon", "5\r\nhello\r\n0\r\nXy\r\n\r\n"),
        ("trailer-content-length", "5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"),
        ("smuggle-in-chunk", "5\r\nhello\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]


def te_variants():
    """(name, header lines) for Transfer-Encoding obfuscations (TE.TE)."""
    return [
        ("te-chunked", ["Transfer-Encoding: chunked"]),
        ("te-upper", ["Transfer-Encoding: CHUNKED"]),
        ("te-mixed-name", ["tRANSFER-eNCODING: chunked"]),
        ("te-tab-value", ["Transfer-Encoding:\tchunked"]),
        ("te-no-space", ["Transfer-Encoding:chunked"]),
        ("te-trailing-space", ["Transfer-Encoding: chunked "]),
        ("te-space-before-colon", ["Transfer-Encoding : chunked"]),
        ("te-tab-before-colon", ["Transfer-Encoding\t: chunked"]),
        ("te-xchunked", ["Transfer-Encoding: xchunked"]),
        ("te-chunkedx", ["Transfer-Encoding: chunkedx"]),
        ("te-quoted", ["Transfer-Encoding: \"chunked\""]),
        ("te-vtab", ["Transfer-Encoding:\x0bchunked"]),
        ("te-ff", ["Transfer-Encoding:\x0cchunked"]),
        ("te-nul", ["Transfer-Encoding: chunked\x00"]),
        ("te-gzip-chunked", ["Transfer-Encoding: gzip, chunked"]),
        ("te-chunked-gzip", ["Transfer-Encoding: chunked, gzip"]),
        ("te-identity", ["Transfer-Encoding: identity"]),
        ("te-chunked-identity", ["Transfer-Encoding: chunked, identity"]),
        ("te-identity-chunked", ["Transfer-Encoding: identity, chunked"]),
        ("te-gzip", ["Transfer-Encoding: gzip"]),
        ("te-dup", ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]),
        ("te-dup-x", ["Transfer-Encoding: chunked", "Transfer-Encoding: x"]),
        ("te-dup-x-first", ["Transfer-Encoding: x", "Transfer-Encoding: chunked"]),
        ("te-empty-elements", ["Transfer-Encoding: , chunked,"]),
        ("te-empty", ["Transfer-Encoding:"]),
        ("te-param", ["Transfer-Encoding: chunked;q=1"]),
        ("te-space-inside", ["Transfer-Encoding: chun ked"]),
        ("te-obs-fold", ["Transfer-Encoding:", " chunked"]),
        ("te-fold-hidden", ["X-Foo: bar", " Transfer-Encoding: chunked"]),
        ("te-underscore", ["Transfer_Encoding: chunked"]),
        ("te-cr-in-name", ["Transfer-Encoding\r: chunked"]),
        ("te-bare-lf-before", ["X: a\nTransfer-Encoding: chunked"]),
        ("te-leading-comma", ["Transfer-Encoding: ,chunked"]),
    ]


def cl_variants():
    return [
        ("cl-5", ["Content-Length: 5"]),
        ("cl-05", ["Content-Length: 05"]),
        ("cl-0", ["Content-Length: 0"]),
        ("cl-plus", ["Content-Length: +5"]),
        ("cl-minus", ["Content-Length: -5"]),
        ("cl-space-inside", ["Content-Length: 5 5"]),
        ("cl-ows", ["Content-Length:  5  "]),
        ("cl-empty", ["Content-Length:"]),
        ("cl-hex", ["Content-Length: 0x5"]),
        ("cl-list-same", ["Content-Length: 5, 5"]),
        ("cl-list-diff", ["Content-Length: 5, 6"]),
        ("cl-dup-same", ["Content-Length: 5", "Content-Length: 5"]),
        ("cl-dup-diff", ["Content-Length: 5", "Content-Length: 6"]),
        ("cl-dup-leading-zero", ["Content-Length: 5", "Content-Length: 005"]),
        ("cl-overflow", ["Content-Length: 18446744073709551621"]),
        ("cl-huge", ["Content-Length: 99999999999999999999999"]),
        ("cl-decimal", ["Content-Length: 5.0"]),
        ("cl-space-before-colon", ["Content-Length : 5"]),
        ("cl-vtab", ["Content-Length:\x0b5"]),
        ("cl-obs-fold", ["Content-Length:", " 5"]),
        ("cl-underscore", ["Content_Length: 5"]),
    ]


def requests():
    out = []
    # Everyday requests.
    out.append(("get-minimal", "GET / HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("get-curl", "GET /index.html HTTP/1.1\r\nHost: localhost:8080\r\n"
                "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"))
    out.append(("get-browser", "GET /app/main.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\n"
                "Connection: keep-alive\r\nsec-ch-ua: \"Chromium\";v=\"118\"\r\n"
                "sec-ch-ua-mobile: ?0\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
                "sec-ch-ua-platform: \"Linux\"\r\nAccept: */*\r\nSec-Fetch-Site: same-origin\r\n"
                "Sec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: script\r\n"
                "Referer: https://www.example.com/app/\r\nAccept-Encoding: gzip, deflate, br\r\n"
                "Accept-Language: en-US,en;q=0.9\r\nCookie: session=abc123; theme=dark\r\n\r\n"))
    out.append(("get-http10", "GET / HTTP/1.0\r\n\r\n"))
    out.append(("get-http10-keepalive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
    out.append(("get-close", "GET / HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n"))
    out.append(("get-absolute", "GET http://example.com/x?y=1 HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("get-absolute-port", "GET http://example.com:8080/ HTTP/1.1\r\n"
                "Host: example.com:8080\r\n\r\n"))
    out.append(("get-absolute-host-mismatch", "GET http://evil.com/ HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
    out.append(("connect-origin-form", "CONNECT / HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("options-star", "OPTIONS * HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("get-star", "GET * HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("get-ipv6-host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"))
    out.append(("get-empty-host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"))
    out.append(("get-pct", "GET /a%20b/%C3%A9?q=%2F HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("get-obs-text-value", "GET / HTTP/1.1\r\n" + H + "X-Name: caf\xc3\xa9\r\n\r\n"))
    out.append(("get-expect", "PUT /f HTTP/1.1\r\n" + H + "Expect: 100-continue\r\n"
                "Content-Length: 5\r\n\r\nhello"))
    out.append(("get-upgrade", "GET /ws HTTP/1.1\r\n" + H + "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"))
    out.append(("get-with-body", "GET / HTTP/1.1\r\n" + H + "Content-Length: 4\r\n\r\nbody"))
    out.append(("head", "HEAD / HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("delete", "DELETE /item/1 HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("custom-method", "PURGE /cache HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("lowercase-method", "get / HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("leading-crlf", "\r\nGET / HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("many-headers", "GET / HTTP/1.1\r\n" + H +
                "".join("X-H%d: v%d\r\n" % (i, i) for i in range(60)) + "\r\n"))
    out.append(("long-value", "GET / HTTP/1.1\r\n" + H + "X-Long: " + "v" * 4000 + "\r\n\r\n"))
    out.append(("post-big-body", "POST / HTTP/1.1\r\n" + H + "Content-Length: 3000\r\n\r\n" +
                "b" * 3000))
    out.append(("post-chunk-big", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n"
                "bb8\r\n" + "c" * 3000 + "\r\n0\r\n\r\n"))
    # Pipelines.
    out.append(("pipeline-gets", ("GET /1 HTTP/1.1\r\n" + H + "\r\n") +
                ("GET /2 HTTP/1.1\r\n" + H + "\r\n") + ("GET /3 HTTP/1.1\r\n" + H + "\r\n")))
    out.append(("pipeline-mixed", "POST /a HTTP/1.1\r\n" + H + "Content-Length: 3\r\n\r\nabc" +
                "POST /b HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n" +
                "GET /c HTTP/1.1\r\n" + H + "\r\n"))
    out.append(("pipeline-bad-second", "GET /1 HTTP/1.1\r\n" + H + "\r\n" +
                "GET /2 HTTP/1.1\nHost: x\n\n"))
    # Smuggling classics.
    out.append(("cl-te", req([H.strip(), "Content-Length: 6", "Transfer-Encoding: chunked"],
                             "0\r\n\r\nG")))
    out.append(("te-cl", req([H.strip(), "Transfer-Encoding: chunked", "Content-Length: 3"],
                             "8\r\nSMUGGLED\r\n0\r\n\r\n")))
    out.append(("cl-te-get-smuggle", req([H.strip(), "Content-Length: 44",
                                          "Transfer-Encoding: chunked"],
                                         "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: localhost\r\n\r\n")))
    out.append(("cl-0-te", req([H.strip(), "Content-Length: 0", "Transfer-Encoding: chunked"],
                               "0\r\n\r\n")))
    for name, lines in te_variants():
        out.append((name, req([H.strip()] + lines, "5\r\nhello\r\n0\r\n\r\n")))
        out.append((name + "-with-cl", req([H.strip()] + lines + ["Content-Length: 4"],
                                           "5\r\nhello\r\n0\r\n\r\n")))
    for name, lines in cl_variants():
        out.append((name, req([H.strip()] + lines, "hello")))
    for name, body in chunked_bodies():
        out.append(("chunked-" + name, req([H.strip(), "Transfer-Encoding: chunked"], body)))
    # Request lines.
    for name, line in [
        ("v20", "GET / HTTP/2.0"), ("v12", "GET / HTTP/1.2"), ("v09", "GET / HTTP/0.9"),
        ("v09-bare", "GET /"), ("v-lower", "GET / http/1.1"), ("v110", "GET / HTTP/1.10"),
        ("v2", "GET / HTTP/2"), ("v-trailing-space", "GET / HTTP/1.1 "),
        ("two-spaces", "GET  / HTTP/1.1"), ("tab-sep", "GET\t/ HTTP/1.1"),
        ("method-at", "GE@T / HTTP/1.1"), ("leading-space", " GET / HTTP/1.1"),
        ("space-in-target", "GET /a b HTTP/1.1"), ("fragment", "GET /a#b HTTP/1.1"),
        ("bad-pct", "GET /%zz HTTP/1.1"), ("short-pct", "GET /%4 HTTP/1.1"),
        ("obs-text-target", "GET /caf\xc3\xa9 HTTP/1.1"), ("nul-target", "GET /\x00 HTTP/1.1"),
        ("authority-get", "GET example.com:80 HTTP/1.1"), ("ftp", "GET ftp://example.com/ HTTP/1.1"),
        ("userinfo", "GET http://u:p@example.com/ HTTP/1.1"),
        ("empty-authority", "GET http:///x HTTP/1.1"), ("pipe-in-query", "GET /?a|b HTTP/1.1"),
        ("double-slash", "GET //x HTTP/1.1"), ("cr-in-line", "GET /\r HTTP/1.1"),
        ("empty-method", " / HTTP/1.1"), ("only-method", "GET"),
    ]:
        out.append(("line-" + name, line + "\r\n" + H + "\r\n"))
    # Host.
    out.append(("host-missing", "GET / HTTP/1.1\r\n\r\n"))
    out.append(("host-dup", "GET / HTTP/1.1\r\n" + H + H + "\r\n"))
    out.append(("host-dup-diff", "GET / HTTP/1.1\r\n" + H + "host: other.com\r\n\r\n"))
    out.append(("host-space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"))
    out.append(("host-userinfo", "GET / HTTP/1.1\r\nHost: u@example.com\r\n\r\n"))
    out.append(("host-path", "GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n"))
    out.append(("host-bad-port", "GET / HTTP/1.1\r\nHost: example.com:8x\r\n\r\n"))
    out.append(("host-http10-missing", "GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"))
    # Field syntax and line endings.
    for name, lines in [
        ("space-before-colon", ["X-A : b"]), ("obs-fold", ["X-A: b", "  c"]),
        ("fold-first", [" X-A: b"]), ("empty-name", [": b"]), ("no-colon", ["NoColon"]),
        ("paren-name", ["X(A): b"]), ("nul-value", ["X-A: a\x00b"]), ("del-value", ["X-A: a\x7fb"]),
        ("cr-value", ["X-A: a\rb"]), ("esc-value", ["X-A: \x1b[0m"]), ("tab-value", ["X-A: a\tb"]),
        ("nul-name", ["X\x00A: b"]), ("utf8-name", ["X-\xc3\xa9: b"]),
        ("colon-in-value", ["X-A: a:b:c"]), ("empty-value", ["X-A:"]),
        ("connection-close-te", ["Connection: close, Transfer-Encoding"]),
    ]:
        out.append(("field-" + name, "GET / HTTP/1.1\r\n" + H + "".join(l + "\r\n" for l in lines)
                    + "\r\n"))
    out.append(("lf-only", "GET / HTTP/1.1\nHost: example.com\n\n"))
    out.append(("lf-only-end", "GET / HTTP/1.1\r\nHost: example.com\r\n\n"))
    out.append(("lf-mixed", "GET / HTTP/1.1\r\nHost: example.com\nX: y\r\n\r\n"))
    out.append(("cr-only", "GET / HTTP/1.1\rHost: example.com\r\r"))
    out.append(("lf-then-crlf", "GET / HTTP/1.1\n\r\nHost: example.com\r\n\r\n"))
    out.append(("incomplete-head", "GET / HTTP/1.1\r\nHost: example.com\r\n"))
    out.append(("incomplete-body", "POST / HTTP/1.1\r\n" + H + "Content-Length: 10\r\n\r\nabc"))
    out.append(("empty", ""))
    out.append(("only-crlf", "\r\n"))
    return out


def responses():
    ok = "HTTP/1.1 200 OK\r\n"
    out = [
        ("cl", ok + "Content-Length: 5\r\n\r\nhello"),
        ("cl-0", ok + "Content-Length: 0\r\n\r\n"),
        ("chunked", ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("chunked-one-trailer", ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: 1\r\n\r\n"),
        ("until-close", ok + "Server: x\r\n\r\nbody until close"),
        ("http10-until-close", "HTTP/1.0 200 OK\r\n\r\nold server"),
        ("http10-cl", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        ("204", "HTTP/1.1 204 No Content\r\n\r\n"),
        ("204-cl", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"),
        ("304", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
        ("100-then-200", "HTTP/1.1 100 Continue\r\n\r\n" + ok + "Content-Length: 2\r\n\r\nok"),
        ("103-then-200", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + ok +
         "Content-Length: 2\r\n\r\nok"),
        ("empty-reason", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"),
        ("no-reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
        ("reason-obs-text", "HTTP/1.1 200 \xc3\x9cber\r\nContent-Length: 0\r\n\r\n"),
        ("pipeline", ok + "Content-Length: 1\r\n\r\na" + ok + "Transfer-Encoding: chunked\r\n\r\n"
         "1\r\nb\r\n0\r\n\r\n" + "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nc"),
        ("nginx-like", "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT"
         "\r\nContent-Type: text/html\r\nContent-Length: 12\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00"
         " GMT\r\nConnection: keep-alive\r\nETag: \"659200c0-c\"\r\nAccept-Ranges: bytes\r\n\r\n"
         "hello world\n"),
        ("te-cl", ok + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("te-gzip", ok + "Transfer-Encoding: gzip\r\n\r\nxyz"),
        ("te-gzip-chunked", ok + "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"),
        ("te-http10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("te-204", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("cl-dup-diff", ok + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        ("cl-dup-same", ok + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nab"),
        ("cl-plus", ok + "Content-Length: +2\r\n\r\nab"),
        ("v20", "HTTP/2.0 200 OK\r\n\r\n"),
        ("v-lower", "http/1.1 200 OK\r\n\r\n"),
        ("status-short", "HTTP/1.1 20 OK\r\n\r\n"),
        ("status-long", "HTTP/1.1 2000 OK\r\n\r\n"),
        ("status-letters", "HTTP/1.1 2x0 OK\r\n\r\n"),
        ("status-099", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"),
        ("status-600", "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n"),
        ("no-space", "HTTP/1.1200 OK\r\n\r\n"),
        ("reason-ctl", "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n"),
        ("leading-crlf", "\r\n" + ok + "Content-Length: 0\r\n\r\n"),
        ("lf-only", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
        ("obs-fold", ok + "X: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
        ("space-before-colon", ok + "Content-Length : 0\r\n\r\n"),
        ("chunk-0x", ok + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
        ("chunk-lf", ok + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
        ("cl-cut", ok + "Content-Length: 10\r\n\r\nabc"),
        ("chunked-cut", ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhel"),
        ("head-cut", ok + "Content-Length: 0\r\n"),
    ]
    for name, body in chunked_bodies():
        out.append(("chunked-" + name, ok + "Transfer-Encoding: chunked\r\n\r\n" + body))
    return out


def write(outdir, kind, items):
    path = os.path.join(outdir, kind)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        if not old.startswith("crash-"):
            os.remove(os.path.join(path, old))
    seen = set()
    for i, (name, text) in enumerate(items):
        assert name not in seen, name
        seen.add(name)
        safe = re.sub(r"[^a-z0-9.-]", "-", name.lower())
        with open(os.path.join(path, "%03d-%s.http" % (i, safe)), "wb") as f:
            f.write(text.encode("latin-1"))
    return len(items)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    n = write(outdir, "request", requests())
    m = write(outdir, "response", responses())
    print("wrote %d requests and %d responses to %s" % (n, m, outdir))


if __name__ == "__main__":
    main()
