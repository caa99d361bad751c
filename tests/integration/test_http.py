"""The HTTP/1.1 proxy (listeners with protocol=http) end to end: a TLS client (Python's
ssl, curl) through an HTTP ingress, and a plaintext client through an HTTP egress that
speaks TLS to an HTTP ingress, in front of a scripted upstream (scripted_upstream.py) that
records every byte the proxy sent it, or nginx.

Covered: keep-alive and pooling, pipelining, chunked and Content-Length bodies (20 MB byte
for byte), chunked responses to HTTP/1.0 clients, 100-continue, WebSocket upgrades,
routing, the three timeouts, retries and the pool race, the headers the proxy adds and
removes, every malformed request class of issue 4 and malformed upstream responses, the
access log, /stats and a drain during a keep-alive session.

Timeouts are configured short (--request-timeout 1s ...) and every wait is bounded."""

import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import harness
import scripted_upstream as su
from harness import LOOPBACK, SERVICE, listener_label

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MB = 1024 * 1024
HOST = "app.test"
PIPELINED = b"GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"


# ---------------------------------------------------------------------------------------
# A strict-enough HTTP/1.1 client over a plain or TLS socket


class Response:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name lower-cased, value)]
        self.raw_head = raw_head
        self.body = b""
        self.chunked = False
        self.interim = []  # 1xx heads that came before

    def header(self, name):
        return [v for n, v in self.headers if n == name.lower()]

    def one(self, name):
        """The value of a field that must appear at most once (None when absent)."""
        values = self.header(name)
        if len(values) > 1:
            raise AssertionError(f"{name} appears {len(values)} times: {self.raw_head!r}")
        return values[0] if values else None

    def has_token(self, name, token):
        return any(token.lower() in (t.strip().lower() for t in v.split(","))
                   for v in self.header(name))

    @property
    def close(self):
        return self.has_token("connection", "close")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.raw_head[:300]!r} body={self.body[:200]!r}>"


class ClosedEarly(AssertionError):
    """The connection ended (or stalled) before a whole response arrived."""

    def __init__(self, message, data, ending):
        super().__init__(f"{message}: ending={ending}, {len(data)} bytes: {bytes(data[:300])!r}")
        self.data = bytes(data)
        self.ending = ending


class HttpClient:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.ending = None  # "eof", "eof-unclean" (TLS without close_notify) or "reset"

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more into buf. False at EOF/reset; raises socket.timeout at the deadline."""
        if self.ending:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(256 * 1024)
        except (ConnectionResetError, BrokenPipeError):
            self.ending = "reset"
            return False
        except ssl.SSLEOFError:
            self.ending = "eof-unclean"
            return False
        except ssl.SSLError as e:
            if "timed out" in str(e):
                raise socket.timeout(str(e))
            self.ending = f"tls-error {e}"
            return False
        if not data:
            self.ending = "eof"
            return False
        self.buf += data
        return True

    def _take(self, n):
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _read_line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                return self._take(i + 2)
            if not self._fill(deadline):
                raise ClosedEarly("closed inside a line", self.buf, self.ending)

    def read_head(self, timeout=10):
        """The next response head (1xx included); its body is left in the buffer."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end >= 0:
                    break
                if not self._fill(deadline):
                    raise ClosedEarly("closed before a response head", self.buf, self.ending)
        except socket.timeout:
            raise ClosedEarly(f"no response head within {timeout} s", self.buf, "timeout")
        raw = self._take(end + 4)
        lines = raw[:-4].decode("latin-1").split("\r\n")
        match = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not match:
            raise AssertionError(f"not a status line: {lines[0]!r} (head {raw[:300]!r})")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or name != name.strip():
                raise AssertionError(f"malformed field line {line!r} in {raw[:300]!r}")
            headers.append((name.lower(), value.strip(" \t")))
        return Response(match.group(1), int(match.group(2)), match.group(3) or "", headers, raw)

    def read_response(self, method="GET", timeout=10, max_interim=5):
        """A whole response; 1xx heads before it are collected in .interim."""
        interim = []
        while True:
            head = self.read_head(timeout)
            if 100 <= head.status < 200 and head.status != 101 and len(interim) < max_interim:
                interim.append(head)
                continue
            break
        head.interim = interim
        self._read_body(head, method, timeout)
        return head

    def _read_body(self, head, method, timeout):
        deadline = time.monotonic() + timeout
        try:
            if method == "HEAD" or head.status in (101, 204, 304) or head.status < 200:
                return
            te = head.header("transfer-encoding")
            if te:
                if [t.strip().lower() for t in ",".join(te).split(",")] != ["chunked"]:
                    raise AssertionError(f"transfer-encoding {te} in {head!r}")
                head.chunked = True
                parts = []
                while True:
                    line = self._read_line(deadline)
                    size_text = line[:-2].decode("latin-1")
                    if not re.match(r"^[0-9a-fA-F]+$", size_text):
                        raise AssertionError(f"chunk size line {line!r} in response to client")
                    size = int(size_text, 16)
                    if size == 0:
                        break
                    while len(self.buf) < size + 2:
                        if not self._fill(deadline):
                            raise ClosedEarly("closed inside a chunk", b"".join(parts) + self.buf,
                                              self.ending)
                    parts.append(self._take(size))
                    if self._take(2) != b"\r\n":
                        raise AssertionError("chunk data not followed by CRLF")
                while self._read_line(deadline) != b"\r\n":  # trailers
                    pass
                head.body = b"".join(parts)
                return
            length = head.one("content-length")
            if length is not None:
                n = int(length)
                while len(self.buf) < n:
                    if not self._fill(deadline):
                        head.body = bytes(self.buf)
                        raise ClosedEarly(f"closed inside a {n}-byte body", self.buf, self.ending)
                head.body = self._take(n)
                return
            while self._fill(deadline):  # delimited by close
                pass
            head.body = self._take(len(self.buf))
        except socket.timeout:
            raise ClosedEarly(f"body incomplete after {timeout} s", self.buf, "timeout")

    def read_exact(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        try:
            while len(self.buf) < n:
                if not self._fill(deadline):
                    raise ClosedEarly(f"closed before {n} bytes", self.buf, self.ending)
        except socket.timeout:
            raise ClosedEarly(f"{n} bytes not there after {timeout} s", self.buf, "timeout")
        return self._take(n)

    def read_rest(self, timeout=5):
        """Whatever else arrives until the connection closes: (bytes, ending), where ending
        is "eof", "eof-unclean", "reset" or "timeout"."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except socket.timeout:
            return self._take(len(self.buf)), "timeout"
        return self._take(len(self.buf)), self.ending

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request(method="GET", path="/", host=HOST, headers=(), body=None, chunked=False,
            version="HTTP/1.1"):
    """Bytes of a request; a body gets Content-Length unless chunked (one chunk)."""
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{n}: {v}" for n, v in headers]
    framed = b""
    if body is not None:
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            framed = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + \
                b"0\r\n\r\n"
        else:
            lines.append(f"Content-Length: {len(body)}")
            framed = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + framed


def fields(req):
    """The upstream request's fields as {lower-case name: [values]}."""
    out = {}
    for name, value in req.headers:
        out.setdefault(name.lower(), []).append(value)
    return out


# ---------------------------------------------------------------------------------------
# Test bases


class HttpCase(harness.PkiCase):
    """Starts HTTP ingresses and egresses in front of scripted upstreams, and clients."""

    def upstream(self, default=None, scripts=(), **kwargs):
        up = su.ScriptedUpstream(default, scripts, **kwargs)
        self.addCleanup(up.close)
        return up

    def start_http_ingress(self, app_port, extra=(), name="ingress", **kwargs):
        return self.start_ingress(app_port, self.cert, self.key, extra=list(extra), name=name,
                                  options="protocol=http", **kwargs)

    def start_http_egress(self, ports, extra=(), tls=True, name="egress", **kwargs):
        """An HTTP egress for SERVICE whose endpoints are 127.0.0.1:ports: over TLS (to an
        ingress) or, with tls=False, plaintext straight to an app."""
        options = "protocol=http" + ("" if tls else ",tls=off")
        return self.start_egress(ports, self.ca, options=options, extra=list(extra),
                                 name=name, **kwargs)

    def start_http_chain(self, app_port, ingress_extra=(), egress_extra=(), **kwargs):
        """plaintext client -> HTTP egress -TLS-> HTTP ingress -> app. Returns (ingress,
        ingress port, egress, egress port)."""
        ingress, ingress_port = self.start_http_ingress(app_port, ingress_extra, **kwargs)
        egress, egress_port = self.start_http_egress([ingress_port], egress_extra, **kwargs)
        return ingress, ingress_port, egress, egress_port

    def tls_client(self, port, timeout=10):
        ctx = harness.tls_client_context(self.ca)
        raw = harness.connect(port, timeout)
        try:
            tls = ctx.wrap_socket(raw, server_hostname=SERVICE)
        except BaseException:
            raw.close()
            raise
        client = HttpClient(tls)
        self.addCleanup(client.close)
        return client

    def plain_client(self, port, timeout=10):
        client = HttpClient(harness.connect(port, timeout))
        self.addCleanup(client.close)
        return client

    def exchange(self, client, data, method="GET", timeout=10):
        client.send(data)
        try:
            return client.read_response(method, timeout)
        except ClosedEarly as e:
            self.fail_with_diag(f"{method}: {e}")

    def assert_closed(self, client, timeout=5, what="the connection"):
        rest, ending = client.read_rest(timeout)
        self.assertEqual(rest, b"", f"unexpected bytes after the response on {what}")
        self.assertIn(ending, ("eof", "eof-unclean", "reset"),
                      f"{what} still open after {timeout} s\n{self.diag()}")

    def assert_no_upstream_bytes(self, up, settle=0.3):
        """Nothing reached the upstream (given a moment for late bytes to show up)."""
        harness.wait_until(lambda: up.total_bytes() > 0, timeout=settle)
        self.assertEqual(up.total_bytes(), 0,
                         f"the upstream received {up.total_bytes()} bytes: "
                         f"{[c.raw_bytes()[:300] for c in up.connections]!r}")

    def http_stat(self, proc, metric, label_name, label_value, stats=None):
        """Sum of metric{label_name="label_value"} (0 when the series is absent)."""
        stats = stats if stats is not None else proc.stats()
        total = 0
        for (name, labels), value in stats.items():
            if name == metric and f'{label_name}="{label_value}"' in labels:
                total += value
        return total

    def wait_stat(self, proc, metric, label_name, label_value, expected, timeout=5):
        """Waits for the metric to equal expected; fails with its last value."""
        last = [None]

        def check():
            last[0] = self.http_stat(proc, metric, label_name, label_value)
            return last[0] == expected

        if not harness.wait_until(check, timeout=timeout, interval=0.1):
            self.fail_with_diag(f"{metric}{{{label_name}={label_value}}} is {last[0]}, "
                                f"expected {expected}")


class _PathTests:
    """Behaviour every HTTP path must have; run through the ingress (TLS client) and
    through the egress -> ingress chain (plaintext client). Subclasses define open_path."""

    def open_path(self, up_port, ingress_extra=(), egress_extra=()):
        """Starts the proxies in front of up_port; returns a function making clients."""
        raise NotImplementedError

    def test_keep_alive_both_sides_uses_one_upstream_connection(self):
        up = self.upstream(su.serve())
        client = self.open_path(up.port)()
        for i in range(10):
            resp = self.exchange(client, request("GET", f"/keep/{i}"))
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.json()["target"], f"/keep/{i}")
            self.assertFalse(resp.close, resp)
        self.assertEqual(up.connection_count(), 1, self.diag())
        self.assertEqual([r.target for r in up.connections[0].requests],
                         [f"/keep/{i}" for i in range(10)])
        self.assert_path_reused_one_hop_connection()

    def assert_path_reused_one_hop_connection(self):
        pass

    def test_keep_alive_after_a_large_response_reuses_the_upstream_connection(self):
        big = os.urandom(5 * MB)
        up = self.upstream(su.serve(su.by_path({"/big": su.status(200, big)})))
        client = self.open_path(up.port)()
        for path in ("/small", "/big", "/after", "/big", "/last"):
            resp = self.exchange(client, request("GET", path), timeout=30)
            self.assertEqual(resp.status, 200, resp)
            if path == "/big":
                self.assertEqual(hashlib.sha256(resp.body).digest(), hashlib.sha256(big).digest())
        self.assertEqual(
            [[r.target for r in c.requests] for c in up.connections],
            [["/small", "/big", "/after", "/big", "/last"]],
            f"the upstream connection was not reused after a 5 MB response\n{self.diag()}")
        self.assert_path_reused_one_hop_connection()

    def test_pipelined_requests_are_answered_in_order(self):
        big = os.urandom(50000)
        up = self.upstream(su.serve(su.by_path({
            "/p1": su.delayed(200, su.echo()),  # the slowest first: order must still hold
            "/p3": su.chunked_body(big, chunk=7000),
        })))
        client = self.open_path(up.port)()
        client.send(request("GET", "/p1") + request("HEAD", "/p2") + request("GET", "/p3") +
                    request("POST", "/p4", body=b"data") + request("GET", "/p5"))
        methods = ["GET", "HEAD", "GET", "POST", "GET"]
        responses = []
        for i, method in enumerate(methods):
            try:
                responses.append(client.read_response(method, timeout=10))
            except ClosedEarly as e:
                self.fail_with_diag(f"response {i + 1} of 5: {e}")
        self.assertEqual([r.status for r in responses], [200] * 5, responses)
        self.assertEqual(responses[0].json()["target"], "/p1")
        self.assertEqual(responses[1].body, b"")
        self.assertIsNotNone(responses[1].one("content-length"), responses[1])
        self.assertEqual(responses[2].body, big)
        self.assertEqual((responses[3].json()["target"], responses[3].json()["body_length"]),
                         ("/p4", 4))
        self.assertEqual(responses[4].json()["target"], "/p5")
        self.assertEqual([r.target for r in up.requests()], ["/p1", "/p2", "/p3", "/p4", "/p5"])

    def test_chunked_request_body_is_rechunked_upstream(self):
        up = self.upstream(su.serve())
        client = self.open_path(up.port)()
        payload = b"abcdefghijklmnopqrstuvwxyz" + b"hello"
        client.send(b"POST /chunked HTTP/1.1\r\nHost: app.test\r\n"
                    b"Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                    b"1A;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                    b"0005\r\nhello\r\n"
                    b"0\r\nX-Checksum: abc\r\n\r\n")
        resp = client.read_response()
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["body_length"], len(payload))
        (req,) = up.requests()
        self.assertTrue(req.chunked, req.raw_head)
        self.assertEqual(fields(req).get("transfer-encoding"), ["chunked"], req.raw_head)
        self.assertNotIn("content-length", fields(req))
        self.assertEqual(req.body, payload)
        self.assertEqual(req.chunk_sizes[-1], "0")
        for size in req.chunk_sizes:  # re-framed: lower-case hex, no zeros, no extensions
            self.assertRegex(size, r"^(0|[1-9a-f][0-9a-f]*)$", req.raw_body)
        self.assertIn(("x-checksum", "abc"), [(n.lower(), v) for n, v in req.trailers],
                      req.raw_body)

    def test_20mb_content_length_body_is_streamed_byte_for_byte(self):
        up = self.upstream(su.serve())
        client = self.open_path(up.port)()
        payload = os.urandom(20 * MB)
        head = (f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(payload)}\r\n"
                f"\r\n").encode()
        client.send(head + payload[:MB])
        # Streamed, not buffered: the upstream sees body bytes before the client sent the
        # rest.
        streamed = harness.wait_until(lambda: up.total_bytes() > 200 + 64 * 1024, timeout=10)
        self.assertTrue(streamed, f"the upstream received {up.total_bytes()} bytes of the "
                                  f"first MB within 10 s\n{self.diag()}")
        client.send(payload[MB:])
        resp = client.read_response(timeout=60)
        self.assertEqual(resp.status, 200, resp)
        seen = resp.json()
        self.assertEqual((seen["body_length"], seen["body_sha256"]),
                         (len(payload), hashlib.sha256(payload).hexdigest()))
        (req,) = up.requests()
        self.assertEqual(fields(req).get("content-length"), [str(len(payload))], req.raw_head)
        self.assertFalse(req.chunked)
        self.assertEqual(len(req.raw_body), len(payload))

    def test_20mb_chunked_upload_and_download_byte_for_byte(self):
        download = os.urandom(20 * MB)
        up = self.upstream(su.serve(su.by_path({"/down": su.chunked_body(download, 64 * 1024)})))
        client = self.open_path(up.port)()
        payload = os.urandom(20 * MB)
        pieces = [b"POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"]
        for i in range(0, len(payload), 100000):
            piece = payload[i:i + 100000]
            pieces.append(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
        pieces.append(b"0\r\n\r\n")
        client.send(b"".join(pieces))
        resp = client.read_response(timeout=60)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual((resp.json()["body_length"], resp.json()["body_sha256"]),
                         (len(payload), hashlib.sha256(payload).hexdigest()))
        resp = self.exchange(client, request("GET", "/down"), timeout=60)
        self.assertEqual(resp.status, 200, resp)
        self.assertTrue(resp.chunked, resp)
        self.assertEqual(len(resp.body), len(download))
        self.assertEqual(hashlib.sha256(resp.body).digest(), hashlib.sha256(download).digest())

    def test_chunked_response_to_http10_client_is_close_delimited(self):
        body = os.urandom(30000)
        up = self.upstream(su.serve(su.chunked_body(body, chunk=1000)))
        client = self.open_path(up.port)()
        client.send(b"GET /old HTTP/1.0\r\n\r\n")
        resp = client.read_response(timeout=10)  # no framing field: reads until close
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.header("transfer-encoding"), [], resp)
        self.assertIsNone(resp.one("content-length"), resp)
        self.assertTrue(resp.close, resp)
        self.assertEqual(resp.body, body)
        self.assertIn(client.ending, ("eof", "eof-unclean", "reset"))
        (req,) = up.requests()
        self.assertEqual(req.version, "HTTP/1.1")
        self.assertEqual(len(fields(req).get("host", [])), 1, req.raw_head)

    def test_expect_100_continue(self):
        up = self.upstream(su.serve(su.echo(), on_head=su.send_continue))
        client = self.open_path(up.port)()
        client.send(b"POST /continue HTTP/1.1\r\nHost: app.test\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 11\r\n\r\n")
        try:
            interim = client.read_head(timeout=5)
        except ClosedEarly as e:
            self.fail_with_diag(f"no 100 Continue before the body was sent: {e}")
        self.assertEqual(interim.status, 100, interim)
        client.send(b"hello world")
        resp = client.read_response()
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["body_length"], 11)
        (req,) = up.requests()
        self.assertEqual(fields(req).get("expect"), ["100-continue"], req.raw_head)
        self.assertEqual(req.body, b"hello world")

    def test_websocket_upgrade_becomes_a_tunnel(self):
        greeting = b"hello from upstream"
        up = self.upstream(su.serve(su.websocket_echo(greeting)))
        client = self.open_path(up.port)()
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        client.send(request("GET", "/ws", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13")]))
        head = client.read_head(timeout=10)
        self.assertEqual(head.status, 101, head)
        self.assertEqual(head.one("upgrade"), "websocket", head)
        self.assertTrue(head.has_token("connection", "upgrade"), head)
        self.assertEqual(head.one("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(client.read_exact(len(greeting)), greeting)
        payload = os.urandom(200 * 1024)
        client.send(payload)
        self.assertEqual(client.read_exact(len(payload), timeout=20), payload)
        (req,) = up.requests()
        self.assertEqual(fields(req).get("upgrade"), ["websocket"], req.raw_head)
        self.assertTrue(req.has_token("connection", "upgrade"), req.raw_head)
        # Everything after the head went through unparsed.
        self.assertEqual(up.connections[0].byte_count(), len(req.raw_head) + len(payload))

    def test_websocket_clean_close_is_logged_with_its_bytes_and_no_flag(self):
        greeting = b"hello from upstream"
        up = self.upstream(su.serve(su.websocket_echo(greeting)))
        log = os.path.join(self.workdir, "access.log")
        _, port = self.start_http_ingress(up.port, ["--access-log", log,
                                                    "--access-log-format", "json"])
        client = self.tls_client(port)
        client.send(request("GET", "/ws", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))
        self.assertEqual(client.read_head(timeout=10).status, 101)
        self.assertEqual(client.read_exact(len(greeting)), greeting)
        payload = os.urandom(5000)
        client.send(payload)
        self.assertEqual(client.read_exact(len(payload), timeout=20), payload)
        client.close()  # the client ends the tunnel
        self.assertTrue(harness.wait_until(lambda: os.path.exists(log) and
                                           os.path.getsize(log) > 0, timeout=5), self.diag())
        with open(log) as f:
            (entry,) = [json.loads(line) for line in f if line.strip()]
        self.assertEqual((entry["response_code"], entry["response_flags"]), (101, "-"), entry)
        self.assertEqual(entry["bytes_received"], len(payload))
        self.assertEqual(entry["bytes_sent"], len(greeting) + len(payload))

    def test_hop_by_hop_headers_are_removed_both_ways(self):
        up = self.upstream(su.serve(su.echo(headers=[
            ("Connection", "X-Resp-Secret"), ("X-Resp-Secret", "s"),
            ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
            ("Upgrade", "h2c"), ("X-Resp-Kept", "yes")])))
        client = self.open_path(up.port)()
        resp = self.exchange(client, request("GET", "/hop", headers=[
            ("Connection", "keep-alive, X-Hop-Secret"), ("X-Hop-Secret", "s"),
            ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"),
            ("Trailer", "X-T"), ("Upgrade", "h2c"), ("X-End-To-End", "kept")]))
        self.assertEqual(resp.status, 200, resp)
        (req,) = up.requests()
        seen = fields(req)
        for name in ("connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
                     "x-hop-secret"):
            self.assertNotIn(name, seen, f"{name} reached the upstream: {req.raw_head!r}")
        self.assertEqual(seen.get("x-end-to-end"), ["kept"], req.raw_head)
        for name in ("x-resp-secret", "keep-alive", "proxy-connection", "upgrade"):
            self.assertEqual(resp.header(name), [], f"{name} reached the client: {resp!r}")
        self.assertFalse(any("x-resp-secret" in v.lower() for v in resp.header("connection")),
                         resp)
        self.assertEqual(resp.header("x-resp-kept"), ["yes"], resp)
        # The connection stays usable.
        self.assertEqual(self.exchange(client, request("GET", "/after")).status, 200)


class IngressPathTest(_PathTests, HttpCase):
    """TLS client -> HTTP ingress -> upstream."""

    def open_path(self, up_port, ingress_extra=(), egress_extra=()):
        self.ingress, port = self.start_http_ingress(up_port, ingress_extra)
        return lambda: self.tls_client(port)


class EgressPathTest(_PathTests, HttpCase):
    """plaintext client -> HTTP egress -TLS-> HTTP ingress -> upstream."""

    def open_path(self, up_port, ingress_extra=(), egress_extra=()):
        self.ingress, self.ingress_port, self.egress, port = self.start_http_chain(
            up_port, ingress_extra, egress_extra)
        return lambda: self.plain_client(port)

    def assert_path_reused_one_hop_connection(self):
        label = listener_label("ingress", self.ingress_port)
        self.assertEqual(self.ingress.stat("ringside_listener_cx_total", label), 1,
                         f"the egress opened more than one connection to the ingress\n"
                         f"{self.diag()}")


# ---------------------------------------------------------------------------------------
# Routing


class RoutingTest(HttpCase):
    def test_routes_by_host_and_path_prefix(self):
        default, svc_a, svc_b = (self.upstream(su.serve()) for _ in range(3))
        port = harness.free_port()
        self.start_ringside([
            "--egress", f"{LOOPBACK}:{port}={SERVICE},protocol=http,tls=off",
            "--upstream", f"{SERVICE}={LOOPBACK}:{default.port}",
            "--upstream", f"svc-a.ns={LOOPBACK}:{svc_a.port}",
            "--upstream", f"svc-b.ns={LOOPBACK}:{svc_b.port}",
            "--route", "a.example=svc-a.ns",
            "--route", "*.wild.example=svc-a.ns",
            "--route", "b.example/api/=svc-b.ns"], name="egress")
        client = self.plain_client(port)
        sent = [("a.example", "/x"), ("A.Example:8080", "/y"), ("b.example", "/api/v1"),
                ("b.example", "/other"), ("c.example", "/"), ("x.wild.example", "/z"),
                ("b.example", "/api/v2?q=1"), ("wild.example", "/w")]
        for host, path in sent:
            resp = self.exchange(client, request("GET", path, host=host))
            self.assertEqual(resp.status, 200, f"{host}{path}: {resp!r}")
        self.assertEqual([r.target for r in svc_a.requests()], ["/x", "/y", "/z"])
        self.assertEqual([r.target for r in svc_b.requests()], ["/api/v1", "/api/v2?q=1"])
        self.assertEqual([r.target for r in default.requests()], ["/other", "/", "/w"])


# ---------------------------------------------------------------------------------------
# Timeouts


class TimeoutTest(HttpCase):
    def test_request_timeout_answers_504_with_request_id(self):
        up = self.upstream(su.serve(su.never))
        ingress, port = self.start_http_ingress(up.port, ["--request-timeout", "1s"])
        client = self.tls_client(port)
        resp = self.exchange(client, request("GET", "/slow"), timeout=8)
        self.assertEqual(resp.status, 504, resp)
        self.assertEqual(resp.body, b"upstream request timeout\n")
        self.assertRegex(resp.one("x-request-id") or "", UUID, resp)
        (req,) = up.requests()
        self.assertEqual(fields(req).get("x-request-id"), [resp.one("x-request-id")])
        # The upstream connection with the abandoned request is closed, not pooled.
        self.assertTrue(harness.wait_until(lambda: up.connections[0].peer_closed, timeout=5),
                        self.diag())
        self.wait_stat(ingress, "ringside_http_listener_request_timeouts_total", "listener",
                       listener_label("ingress", port), 1)

    def test_request_timeout_keeps_the_client_request_id(self):
        up = self.upstream(su.serve(su.never))
        _, port = self.start_http_ingress(up.port, ["--request-timeout", "1s"])
        client = self.tls_client(port)
        resp = self.exchange(client, request("GET", "/slow", headers=[("X-Request-Id", "rid-7")]),
                             timeout=8)
        self.assertEqual((resp.status, resp.one("x-request-id")), (504, "rid-7"), resp)

    def test_request_timeout_after_the_response_started_cuts_it(self):
        # The request timeout runs to the end of the response: an app that sent the head
        # and part of the body, then stalls, is let go and the client sees the truncation
        # (no close_notify), not a clean end.
        def head_then_stall(request, conn):
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            su.never(request, conn)
        up = self.upstream(su.serve(head_then_stall))
        ingress, port = self.start_http_ingress(up.port, ["--request-timeout", "1s"])
        client = self.tls_client(port)
        client.send(request("GET", "/stall"))
        head = client.read_head(timeout=5)
        self.assertEqual(head.status, 200, head)
        rest, ending = client.read_rest(timeout=8)
        self.assertEqual(rest, b"x" * 10, self.diag())  # 10 of the 100 bytes, then the end
        self.assertIn(ending, ("eof", "eof-unclean", "reset"), self.diag())
        self.assertTrue(harness.wait_until(lambda: up.connections[0].peer_closed, timeout=5),
                        self.diag())
        self.wait_stat(ingress, "ringside_http_listener_request_timeouts_total", "listener",
                       listener_label("ingress", port), 1)

    def test_idle_keep_alive_connection_is_closed(self):
        up = self.upstream(su.serve())
        _, port = self.start_http_ingress(up.port, ["--http-idle-timeout", "1s"])
        client = self.tls_client(port)
        self.assertEqual(self.exchange(client, request("GET", "/")).status, 200)
        self.assert_closed(client, timeout=6, what="an idle keep-alive connection")

    def test_slow_request_head_gets_408(self):
        up = self.upstream(su.serve())
        _, port = self.start_http_ingress(up.port, ["--request-header-timeout", "1s"])
        client = self.tls_client(port)
        client.send(b"GET /slowloris HTTP/1.1\r\nHost: app.test\r\n")
        resp = None
        deadline = time.monotonic() + 8
        i = 0
        while resp is None and time.monotonic() < deadline:
            try:
                client.send(f"X-Drip-{i}: x\r\n".encode())
            except OSError:
                break
            i += 1
            try:
                resp = client.read_response(timeout=0.3)
            except ClosedEarly as e:
                if e.ending != "timeout":
                    break
        if resp is None:
            resp = self.exchange(client, b"", timeout=1)
        self.assertEqual(resp.status, 408, resp)
        self.assertEqual(resp.body, b"request header timeout\n")
        self.assertTrue(resp.close, resp)
        self.assert_closed(client)
        self.assert_no_upstream_bytes(up)


# ---------------------------------------------------------------------------------------
# Retries


class RetryTest(HttpCase):
    def retry_count(self, proc, kind, port):
        return self.http_stat(proc, "ringside_http_listener_request_retries_total", "listener",
                              listener_label(kind, port))

    def test_connect_failure_is_retried_on_the_next_endpoint(self):
        up = self.upstream(su.serve(su.echo(headers=[("Connection", "close")]), max_requests=1))
        dead = harness.free_port()
        egress, port = self.start_http_egress([dead, up.port], tls=False, threads=1)
        for i in range(6):
            client = self.plain_client(port)
            resp = self.exchange(client, request("GET", f"/r{i}"))
            self.assertEqual(resp.status, 200, f"request {i}: {resp!r}\n{self.diag()}")
        self.assertEqual([r.target for r in up.requests()], [f"/r{i}" for i in range(6)])
        self.assertGreaterEqual(self.retry_count(egress, "egress", port), 1,
                                f"the dead endpoint was never tried?\n{self.diag()}")

    def test_503_then_200_is_retried_for_get(self):
        up = self.upstream(su.serve(su.FailFirst(1)))
        ingress, port = self.start_http_ingress(up.port)
        resp = self.exchange(self.tls_client(port), request("GET", "/idem"))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual([r.target for r in up.requests()], ["/idem", "/idem"])
        self.wait_stat(ingress, "ringside_http_listener_request_retries_total", "listener",
                       listener_label("ingress", port), 1)

    def test_503_is_not_retried_for_post(self):
        up = self.upstream(su.serve(su.FailFirst(1)))
        _, port = self.start_http_ingress(up.port)
        resp = self.exchange(self.tls_client(port), request("POST", "/post", body=b"x"))
        self.assertEqual((resp.status, resp.body), (503, b"try again\n"), resp)
        self.assertEqual(up.request_count(), 1)

    def test_reset_before_response_is_retried_for_get(self):
        up = self.upstream(su.serve(), scripts=[su.reset_after_request()])
        _, port = self.start_http_ingress(up.port)
        resp = self.exchange(self.tls_client(port), request("GET", "/reset"))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["target"], "/reset")
        self.assertEqual(up.connection_count(), 2)
        self.assertEqual(up.request_count(), 2)

    def test_reset_before_response_is_not_retried_for_post(self):
        up = self.upstream(su.serve(), scripts=[su.reset_after_request()])
        _, port = self.start_http_ingress(up.port)
        resp = self.exchange(self.tls_client(port), request("POST", "/reset", body=b"x"))
        self.assertEqual((resp.status, resp.body), (502, b"upstream reset before response\n"),
                         resp)
        self.assertEqual(up.request_count(), 1)

    def test_retries_0_turns_retries_off(self):
        up = self.upstream(su.serve(su.by_path({"/503": su.FailFirst(1),
                                                "/reset": su.reset_now})))
        _, port = self.start_http_ingress(up.port, ["--retries", "0"])
        # The reset first, on a fresh connection: a reset on a reused pooled connection is
        # retried whatever --retries says (the keep-alive race, docs/http-proxy.md).
        resp = self.exchange(self.tls_client(port), request("GET", "/reset"))
        self.assertEqual((resp.status, resp.body), (502, b"upstream reset before response\n"),
                         resp)
        resp = self.exchange(self.tls_client(port), request("GET", "/503"))
        self.assertEqual((resp.status, resp.body), (503, b"try again\n"), resp)
        self.assertEqual([r.target for r in up.requests()], ["/reset", "/503"])

    def test_route_with_retries_0_is_not_retried(self):
        svc_a = self.upstream(su.serve(su.FailFirst(1)))
        default = self.upstream(su.serve(su.FailFirst(1)))
        port = harness.free_port()
        self.start_ringside([
            "--egress", f"{LOOPBACK}:{port}={SERVICE},protocol=http,tls=off",
            "--upstream", f"{SERVICE}={LOOPBACK}:{default.port}",
            "--upstream", f"svc-a.ns={LOOPBACK}:{svc_a.port}",
            "--route", "a.example=svc-a.ns,retries=0"], name="egress")
        client = self.plain_client(port)
        resp = self.exchange(client, request("GET", "/no-retry", host="a.example"))
        self.assertEqual((resp.status, resp.body), (503, b"try again\n"), resp)
        resp = self.exchange(client, request("GET", "/retried", host="other.example"))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual([r.target for r in svc_a.requests()], ["/no-retry"])
        self.assertEqual([r.target for r in default.requests()], ["/retried", "/retried"])

    def test_pool_race_upstream_closing_after_each_response_never_reaches_the_client(self):
        delays = [0, 0, 1, 2, 3, 5]

        def script(conn):  # answers one request, then closes silently after a varying delay
            su.serve(max_requests=1, close_delay_ms=delays[conn.record.index % len(delays)])(conn)

        up = self.upstream(script)
        _, port = self.start_http_ingress(up.port)
        client = self.tls_client(port)
        for i in range(50):
            # A POST without a body can be replayed; one whose body went upstream cannot
            # (docs/http-proxy.md, Retries: "body not started").
            if i % 2:
                data, method = request("POST", f"/race/{i}", headers=[("Content-Length", "0")]), \
                    "POST"
            else:
                data, method = request("GET", f"/race/{i}"), "GET"
            resp = self.exchange(client, data, method)
            self.assertEqual(resp.status, 200, f"request {i}: {resp!r}\n{self.diag()}")
            self.assertEqual(resp.json()["target"], f"/race/{i}")
        complete = [r.target for r in up.requests() if r.complete]
        self.assertEqual(sorted(set(complete)), sorted(f"/race/{i}" for i in range(50)))

    def test_pool_race_upstream_idle_close_never_reaches_the_client(self):
        up = self.upstream(su.serve(idle_close_ms=60))
        _, port = self.start_http_ingress(up.port)
        client = self.tls_client(port)
        for i in range(30):
            time.sleep((55 + (i % 11)) / 1000)  # around the upstream's idle close
            resp = self.exchange(client, request("GET", f"/idle/{i}"))
            self.assertEqual(resp.status, 200, f"request {i}: {resp!r}\n{self.diag()}")
        self.assertEqual(sorted({r.target for r in up.requests() if r.complete}),
                         sorted(f"/idle/{i}" for i in range(30)))


# ---------------------------------------------------------------------------------------
# Headers the proxy adds


class HeaderTest(HttpCase):
    def one_request(self, extra=(), headers=(), upstream_headers=(), delay_ms=0, egress=False):
        responder = su.echo(headers=upstream_headers)
        if delay_ms:
            responder = su.delayed(delay_ms, responder)
        up = self.upstream(su.serve(responder))
        if egress:
            _, port = self.start_http_egress([up.port], extra, tls=False)
            client = self.plain_client(port)
        else:
            _, port = self.start_http_ingress(up.port, extra)
            client = self.tls_client(port)
        resp = self.exchange(client, request("GET", "/h", headers=headers))
        self.assertEqual(resp.status, 200, resp)
        (req,) = up.requests()
        return fields(req), resp

    def test_request_id_is_generated_when_absent(self):
        up = self.upstream(su.serve())
        _, port = self.start_http_ingress(up.port)
        client = self.tls_client(port)
        for _ in range(2):
            self.assertEqual(self.exchange(client, request()).status, 200)
        ids = [fields(r).get("x-request-id") for r in up.requests()]
        for value in ids:
            self.assertEqual(len(value or []), 1, ids)
            self.assertRegex(value[0], UUID)
        self.assertNotEqual(ids[0], ids[1])

    def test_request_id_is_kept_when_present(self):
        seen, _ = self.one_request(headers=[("X-Request-Id", "client-id-42")])
        self.assertEqual(seen.get("x-request-id"), ["client-id-42"])

    def test_no_request_id_flag(self):
        seen, _ = self.one_request(extra=["--no-request-id"])
        self.assertNotIn("x-request-id", seen)

    def test_forwarded_headers_on_ingress(self):
        seen, _ = self.one_request()
        self.assertEqual(seen.get("x-forwarded-for"), ["127.0.0.1"])
        self.assertEqual(seen.get("x-forwarded-proto"), ["https"])

    def test_forwarded_for_is_appended_and_proto_replaced(self):
        seen, _ = self.one_request(headers=[("X-Forwarded-For", "10.1.2.3"),
                                            ("X-Forwarded-Proto", "http")])
        self.assertEqual(seen.get("x-forwarded-for"), ["10.1.2.3, 127.0.0.1"])
        self.assertEqual(seen.get("x-forwarded-proto"), ["https"])

    def test_trusted_downstream_keeps_its_forwarded_proto(self):
        # A load balancer on 127.0.0.0/8 that terminated plain HTTP says so; the app sees it.
        claimed = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "http")]
        seen, _ = self.one_request(extra=["--trusted-downstream", "10.0.0.0/8,127.0.0.0/8"],
                                   headers=claimed)
        self.assertEqual(seen.get("x-forwarded-proto"), ["http"])
        self.assertEqual(seen.get("x-forwarded-for"), ["203.0.113.9, 127.0.0.1"])
        # Trusted but silent: https.
        seen, _ = self.one_request(extra=["--trusted-downstream", "127.0.0.1"])
        self.assertEqual(seen.get("x-forwarded-proto"), ["https"])
        # A client outside the trusted ranges cannot claim a scheme.
        seen, _ = self.one_request(extra=["--trusted-downstream", "10.0.0.0/8"], headers=claimed)
        self.assertEqual(seen.get("x-forwarded-proto"), ["https"])

    def test_no_forwarded_headers_flag(self):
        seen, _ = self.one_request(extra=["--no-forwarded-headers"])
        self.assertNotIn("x-forwarded-for", seen)
        self.assertNotIn("x-forwarded-proto", seen)

    def test_egress_adds_no_forwarded_headers(self):
        seen, _ = self.one_request(egress=True)
        self.assertNotIn("x-forwarded-for", seen)
        self.assertNotIn("x-forwarded-proto", seen)
        self.assertEqual(len(seen.get("x-request-id", [])), 1, seen)

    def test_server_and_upstream_service_time_on_responses(self):
        _, resp = self.one_request(upstream_headers=[("Server", "upstream-app/1.0")],
                                   delay_ms=200)
        self.assertEqual(resp.header("server"), ["ringside"], resp)
        value = resp.one("x-upstream-service-time")
        self.assertRegex(value or "", r"^\d+$", resp)
        self.assertGreaterEqual(int(value), 150, "the upstream waited 200 ms before answering")

    def test_no_server_header_flag_keeps_the_upstream_server(self):
        _, resp = self.one_request(extra=["--no-server-header"],
                                   upstream_headers=[("Server", "upstream-app/1.0")])
        self.assertEqual(resp.header("server"), ["upstream-app/1.0"], resp)

    def test_no_upstream_service_time_flag(self):
        _, resp = self.one_request(extra=["--no-upstream-service-time"])
        self.assertEqual(resp.header("x-upstream-service-time"), [], resp)
        self.assertEqual(resp.header("server"), ["ringside"], resp)


# ---------------------------------------------------------------------------------------
# Malformed requests: one test per class, generated from this table
# (name, request bytes, status, body = the parser's reason)

_POST = b"POST / HTTP/1.1\r\nHost: app.test\r\n"
MALFORMED_REQUESTS = [
    ("te_and_cl", _POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "Transfer-Encoding with Content-Length"),
    ("cl_and_te", _POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
     400, "Transfer-Encoding with Content-Length"),
    ("differing_content_lengths", _POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
     400, "duplicate Content-Length with different values"),
    ("bad_content_length", _POST + b"Content-Length: +5\r\n\r\nhello", 400,
     "malformed Content-Length"),
    ("non_final_chunked", _POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400,
     "chunked is not the final transfer coding"),
    ("whitespace_before_colon",
     b"GET / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding : chunked\r\n\r\n", 400,
     "whitespace between field name and colon"),
    ("obs_fold", b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Folded: a\r\n b\r\n\r\n", 400,
     "obs-fold (line folding) in field section"),
    ("bare_cr", b"GET / HTTP/1.1\r\nHost: app.test\r\nX-A: a\rb\r\n\r\n", 400,
     "bare CR in field value"),
    ("bare_lf", b"GET / HTTP/1.1\r\nHost: app.test\nX-A: b\r\n\r\n", 400, "bare LF line ending"),
    ("control_char_in_value", b"GET / HTTP/1.1\r\nHost: app.test\r\nX-A: a\x01b\r\n\r\n", 400,
     "control character in field value"),
    ("invalid_field_name", b"GET / HTTP/1.1\r\nHost: app.test\r\nX(A): b\r\n\r\n", 400,
     "invalid character in field name"),
    ("missing_host", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400, "missing Host"),
    ("duplicate_host", b"GET / HTTP/1.1\r\nHost: app.test\r\nHost: evil.test\r\n\r\n", 400,
     "duplicate Host"),
    ("bad_chunk_size", _POST + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
     400, "invalid chunk size"),
    ("request_line_too_long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: app.test\r\n\r\n",
     414, "request-line too long"),
    ("header_section_too_large",
     b"GET / HTTP/1.1\r\nHost: app.test\r\n" +
     b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 4000) for i in range(10)) + b"\r\n",
     431, "header section too large"),
    ("too_many_header_fields",
     b"GET / HTTP/1.1\r\nHost: app.test\r\n" +
     b"".join(b"X-F-%d: v\r\n" % i for i in range(120)) + b"\r\n",
     431, "too many header fields"),
]


class MalformedRequestTest(HttpCase):
    """Each class: the right status with the parser's reason, Connection: close, the
    connection closed, the pipelined request behind it not answered, zero bytes upstream."""

    def check_rejected(self, data, status, reason):
        up = self.upstream(su.serve())
        ingress, port = self.start_http_ingress(up.port)
        client = self.tls_client(port)
        client.send(data + PIPELINED)
        try:
            resp = client.read_response(timeout=5)
        except ClosedEarly as e:
            self.fail_with_diag(f"no response: {e}")
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.body, reason.encode() + b"\n", resp)
        self.assertTrue(resp.close, f"no Connection: close: {resp!r}")
        self.assertEqual(resp.header("server"), ["ringside"], resp)
        self.assert_closed(client, what="the connection after a malformed request")
        self.assert_no_upstream_bytes(up)
        # The proxy still serves the next client.
        self.assertEqual(self.exchange(self.tls_client(port), request()).status, 200)


def _malformed_test(data, status, reason):
    def test(self):
        self.check_rejected(data, status, reason)
    return test


for _name, _data, _status, _reason in MALFORMED_REQUESTS:
    setattr(MalformedRequestTest, f"test_{_name}_is_{_status}",
            _malformed_test(_data, _status, _reason))


# ---------------------------------------------------------------------------------------
# Malformed upstream responses and dead upstreams


class UpstreamFailureTest(HttpCase):
    def check_502_and_dropped(self, raw):
        """The first upstream connection answers raw: the client gets 502 and that
        connection is closed by the proxy, never reused; the next request uses a new one."""
        up = self.upstream(su.serve(), scripts=[su.raw_then_wait(raw)])
        _, port = self.start_http_ingress(up.port)
        client = self.tls_client(port)
        resp = self.exchange(client, request("GET", "/broken"))
        self.assertEqual(resp.status, 502, resp)
        self.assertEqual(resp.body, b"upstream sent an invalid response\n", resp)
        self.assertEqual(up.connection_count(), 1, "an invalid response must not be retried")
        self.assertTrue(harness.wait_until(lambda: up.connections[0].peer_closed, timeout=5),
                        f"the proxy kept the upstream connection that sent {raw!r}\n"
                        f"{self.diag()}")
        resp = self.exchange(self.tls_client(port), request("GET", "/next"))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual([r.target for r in up.connections[0].requests], ["/broken"])
        self.assertEqual(up.connection_count(), 2)

    def test_bad_content_length_response_is_502(self):
        self.check_502_and_dropped(b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx")

    def test_te_and_cl_response_is_502(self):
        self.check_502_and_dropped(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")

    def test_garbage_status_line_is_502(self):
        self.check_502_and_dropped(b"HTTP/1.1 OK 200\r\nContent-Length: 0\r\n\r\n")

    def test_truncated_body_cuts_the_client_connection(self):
        """The upstream sends a head announcing 100 bytes, 5 of them, and closes. Each time
        the client must get either a 502 or that head and a cut connection, never a bare
        close (repeated: whether the proxy reads head, body and EOF in one batch varies)."""
        truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"
        up = self.upstream(su.serve(su.by_path({"/truncated": su.fixed_then_close(truncated)})))
        _, port = self.start_http_ingress(up.port)
        for i in range(10):
            client = self.tls_client(port)
            client.send(request("GET", "/truncated"))
            try:
                resp = client.read_response(timeout=10)
            except ClosedEarly as e:  # the head was forwarded: the connection must be cut
                self.assertIn(e.ending, ("eof", "eof-unclean", "reset"), self.diag())
                # Either the head was parsed and the body cut ("closed inside a ... body",
                # e.data then holds the body bytes), or the raw bytes start with the head.
                self.assertTrue("inside a 100-byte body" in str(e) and e.data == b"short"
                                or e.data.startswith(b"HTTP/1.1 200 OK\r\n"),
                                f"attempt {i}: neither a 502 nor the upstream's head before "
                                f"the close: {e}")
            else:
                self.assertEqual(resp.status, 502,
                                 f"attempt {i}: a truncated body arrived as complete: {resp!r}")
            client.close()
        resp = self.exchange(self.tls_client(port), request("GET", "/next"))
        self.assertEqual(resp.status, 200, resp)

    def test_early_response_before_the_request_body_ends(self):
        """The upstream answers a POST after its head, before the 1 MB body arrived (nginx
        does that for `return 201`, any app for 413). The client either gets the response
        with Connection: close and a closed connection, or its next request answered."""
        def early(conn):
            while True:
                req = conn.read_head()
                if req is None:
                    return
                if req.method == "POST":
                    conn.send(su.response(201, b"stored\n"))
                    conn.read_body(req)
                else:
                    conn.read_body(req)
                    conn.send(su.response(200, b"next\n"))

        up = self.upstream(early)
        _, port = self.start_http_ingress(up.port)
        for i in range(3):
            client = self.tls_client(port)
            resp = self.exchange(client, request("POST", "/upload", body=os.urandom(MB)), "POST")
            self.assertEqual((resp.status, resp.body), (201, b"stored\n"), resp)
            if resp.close:
                self.assert_closed(client, what="a connection answered with Connection: close")
                continue
            client.send(request("GET", "/next"))
            try:
                resp = client.read_response()
            except ClosedEarly as e:
                self.fail_with_diag(f"attempt {i}: the 201 kept the connection alive (no "
                                    f"Connection: close) but the next request got: {e}")
            self.assertEqual((resp.status, resp.body), (200, b"next\n"), resp)

    def test_upstream_closing_after_an_early_response_ends_the_client_cleanly(self):
        """The upstream answers a POST after its head (keep-alive, no Connection: close)
        and then closes its side (a FIN) while the 1 MB body still comes. The client has its whole answer:
        it gets it, then a clean TLS close (close_notify), not a cut, and no wait for an
        idle timeout with its upload paused."""
        def early_then_close(conn):
            if conn.read_head() is None:
                return
            conn.send(su.response(201, b"stored\n"))
            # A FIN, not a reset: the upstream keeps reading (and dropping) the body, so
            # no RST can overtake its answer.
            conn.sock.shutdown(socket.SHUT_WR)
            while conn.sock.recv(65536):
                pass

        up = self.upstream(early_then_close)
        _, port = self.start_http_ingress(up.port)
        for i in range(3):
            client = self.tls_client(port)
            # The head and 1,000 bytes of the body; the rest only once the answer is in,
            # so the answer is early for sure.
            whole = request("POST", "/upload", body=os.urandom(MB))
            cut = whole.index(b"\r\n\r\n") + 4 + 1000
            resp = self.exchange(client, whole[:cut], "POST")
            self.assertEqual((resp.status, resp.body), (201, b"stored\n"), resp)
            try:
                client.send(whole[cut:])
            except OSError:
                pass  # the proxy may already have closed after its lingering reads
            rest, ending = client.read_rest(10)
            self.assertEqual(rest, b"", f"attempt {i}")
            self.assertEqual(ending, "eof", f"attempt {i}: not a clean close\n{self.diag()}")
            client.close()

    def test_bad_chunk_in_response_body_cuts_the_client_connection(self):
        up = self.upstream(su.serve(), scripts=[su.raw_then_wait(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")])
        _, port = self.start_http_ingress(up.port)
        client = self.tls_client(port)
        client.send(request("GET", "/badchunk"))
        try:
            resp = client.read_response(timeout=10)
        except ClosedEarly as e:
            self.assertIn(e.ending, ("eof", "eof-unclean", "reset"), self.diag())
        else:
            self.assertEqual(resp.status, 502, f"a broken chunked body arrived whole: {resp!r}")
        self.assertTrue(harness.wait_until(lambda: up.connections[0].peer_closed, timeout=5),
                        self.diag())

    def test_dead_upstream_is_a_fast_503(self):
        dead = harness.free_port()
        ingress, port = self.start_http_ingress(dead)
        client = self.tls_client(port)
        resp = self.exchange(client, request("GET", "/dead"), timeout=5)
        self.assertEqual(resp.status, 503, resp)
        self.assertEqual(resp.body, b"upstream connect failure\n")
        self.assertRegex(resp.one("x-request-id") or "", UUID, resp)
        label = listener_label("ingress", port)
        self.wait_stat(ingress, "ringside_http_listener_http_code_proxy_5xx_total", "listener",
                       label, 1)
        self.wait_stat(ingress, "ringside_http_listener_request_retry_limit_exceeded_total",
                       "listener", label, 1)


# ---------------------------------------------------------------------------------------
# Access log

_TEXT_LINE = re.compile(
    r'^\[(?P<start>[0-9T:.\-]+Z)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>\S+)" '
    r'(?P<status>\d+) (?P<flags>\S+) (?P<rx>\d+) (?P<tx>\d+) (?P<duration>\d+) (?P<svc>\S+) '
    r'"(?P<id>[^"]*)" "(?P<authority>[^"]*)" "(?P<ua>[^"]*)" "(?P<upstream>[^"]*)" '
    r'(?P<service>\S+) (?P<retries>\d+) (?P<listener>\S+) (?P<client>\S+) "(?P<details>[^"]*)" '
    r'(?P<grpc_status>-|\d+) (?P<downstream_tls>tls|plaintext|-) "(?P<peer_identity>[^"]*)" '
    r'(?P<authz>-|allowed|denied|would_deny)$')


class AccessLogTest(HttpCase):
    def log_lines(self, path, count, timeout=5):
        def lines():
            try:
                with open(path, encoding="utf-8") as f:
                    got = f.read().splitlines()
            except OSError:
                return None
            return got if len(got) >= count else None

        got = harness.wait_until(lines, timeout=timeout, interval=0.1)
        if not got:
            try:
                with open(path, encoding="utf-8") as f:
                    have = f.read()
            except OSError as e:
                have = str(e)
            self.fail_with_diag(f"{path}: expected {count} lines, have: {have!r}")
        self.assertEqual(len(got), count, got)
        return got

    def test_text_log_has_one_line_per_request(self):
        up = self.upstream(su.serve(su.by_path({"/missing": su.status(404, b"nope")})))
        log = os.path.join(self.workdir, "access.log")
        _, port = self.start_http_ingress(up.port, ["--access-log", log])
        client = self.tls_client(port)
        self.assertEqual(self.exchange(client, request("GET", "/ok?token=secret", headers=[
            ("User-Agent", "test-agent/1")])).status, 200)
        self.assertEqual(self.exchange(client, request("GET", "/missing")).status, 404)
        self.assertEqual(self.exchange(client, request("POST", "/post", body=b"abcd")).status, 200)
        lines = self.log_lines(log, 3)
        parsed = []
        for line in lines:
            m = _TEXT_LINE.match(line)
            self.assertIsNotNone(m, f"not an access log line: {line!r}")
            parsed.append(m.groupdict())
        self.assertNotIn("secret", "\n".join(lines))
        first, second, third = parsed
        self.assertEqual((first["method"], first["path"], first["status"], first["flags"],
                          first["retries"], first["ua"]),
                         ("GET", "/ok", "200", "-", "0", "test-agent/1"))
        self.assertEqual((second["path"], second["status"]), ("/missing", "404"))
        self.assertEqual((third["method"], third["status"], third["rx"]), ("POST", "200", "4"))
        self.assertEqual(second["tx"], "4")
        for entry in parsed:
            self.assertRegex(entry["id"], UUID)
            self.assertEqual(entry["listener"], listener_label("ingress", port))
            self.assertEqual(entry["upstream"], f"{LOOPBACK}:{up.port}")
            self.assertEqual(entry["authority"], HOST)
            self.assertEqual(entry["protocol"], "HTTP/1.1")
            self.assertEqual(entry["grpc_status"], "-")  # not a gRPC call
            self.assertEqual(entry["downstream_tls"], "tls")

    def test_json_log_flags_retries_and_details(self):
        up = self.upstream(su.serve(su.by_path({"/slow": su.never, "/reset": su.reset_now})))
        dead = harness.free_port()
        log = os.path.join(self.workdir, "access.json")
        port, dead_port = harness.free_port(), harness.free_port()
        self.start_ringside([
            "--service-name", SERVICE, "--cert", self.cert, "--key", self.key,
            "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{up.port},protocol=http",
            "--ingress", f"{LOOPBACK}:{dead_port}={LOOPBACK}:{dead},protocol=http",
            "--access-log", log, "--access-log-format", "json", "--log-query",
            "--retries", "1", "--request-timeout", "1s"], name="ingress")
        expected = [(port, "/ok?q=1", 200), (port, "/reset", 502), (port, "/slow", 504),
                    (dead_port, "/dead", 503)]
        for p, path, code in expected:
            resp = self.exchange(self.tls_client(p), request("GET", path), timeout=8)
            self.assertEqual(resp.status, code, f"{path}: {resp!r}")
        entries = {}
        for line in self.log_lines(log, 4):
            entry = json.loads(line)
            entries[entry["path"]] = entry
        self.assertEqual(sorted(entries), sorted(p for _, p, _ in expected))
        for key in ("start_time", "method", "path", "protocol", "response_code", "response_flags",
                    "details", "bytes_received", "bytes_sent", "duration_ms",
                    "upstream_service_time_ms", "upstream_host", "upstream_service",
                    "retry_count", "request_id", "authority", "user_agent", "listener",
                    "downstream_remote_address"):
            self.assertIn(key, entries["/ok?q=1"])
        for entry in entries.values():  # the client's address and port, as the proxy saw it
            self.assertRegex(entry["downstream_remote_address"], r"^127\.0\.0\.1:[1-9][0-9]*$")

        def flags(entry):
            return set((entry["response_flags"] or "-").split(","))

        ok, reset, slow, dead_entry = (entries[p] for _, p, _ in expected)
        self.assertEqual((ok["response_code"], flags(ok), ok["retry_count"]), (200, {"-"}, 0))
        self.assertEqual((reset["response_code"], reset["retry_count"], reset["details"]),
                         (502, 1, "upstream reset before response"))
        self.assertLessEqual({"UC", "URX"}, flags(reset), reset)
        self.assertEqual((slow["response_code"], slow["details"]), (504, "upstream request timeout"))
        self.assertIn("UT", flags(slow), slow)
        self.assertEqual((dead_entry["response_code"], dead_entry["retry_count"],
                          dead_entry["details"]), (503, 1, "upstream connect failure"))
        self.assertLessEqual({"UF", "URX"}, flags(dead_entry), dead_entry)
        self.assertEqual(dead_entry["listener"], listener_label("ingress", dead_port))


# ---------------------------------------------------------------------------------------
# /stats


class StatsTest(HttpCase):
    def test_http_metric_families_count_what_was_sent(self):
        up = self.upstream(su.serve(su.by_path({"/missing": su.status(404, b"nope"),
                                                "/fail": su.status(500, b"boom!")})))
        ingress, ingress_port, egress, egress_port = self.start_http_chain(up.port)
        client = self.plain_client(egress_port)
        responses = [self.exchange(client, request("GET", "/a")),
                     self.exchange(client, request("GET", "/b")),
                     self.exchange(client, request("GET", "/missing")),
                     self.exchange(client, request("POST", "/fail", body=b"xyz"), "POST")]
        self.assertEqual([r.status for r in responses], [200, 200, 404, 500])
        body_bytes = sum(len(r.body) for r in responses) + 3
        for proc, kind, port in ((egress, "egress", egress_port),
                                 (ingress, "ingress", ingress_port)):
            label = listener_label(kind, port)
            for metric, value in (("requests_total", 4), ("http_code_target_2xx_total", 2),
                                  ("http_code_target_3xx_total", 0),
                                  ("http_code_target_4xx_total", 1),
                                  ("http_code_target_5xx_total", 1),
                                  ("http_code_proxy_4xx_total", 0),
                                  ("http_code_proxy_5xx_total", 0),
                                  ("request_retries_total", 0), ("request_active", 0),
                                  ("target_response_time_seconds_count", 4),
                                  ("target_processed_bytes_total", body_bytes)):
                self.wait_stat(proc, f"ringside_http_listener_{metric}", "listener", label, value)
            stats = proc.stats()
            inf = [v for (n, labels), v in stats.items()
                   if n == "ringside_http_listener_target_response_time_seconds_bucket"
                   and f'listener="{label}"' in labels and 'le="+Inf"' in labels]
            self.assertEqual(inf, [4], f"{kind}: +Inf bucket")
        for metric, value in (("requests_total", 4), ("http_code_target_2xx_total", 2),
                              ("http_code_target_5xx_total", 1)):
            self.wait_stat(egress, f"ringside_http_service_{metric}", "service", SERVICE, value)
        # A malformed request is the proxy's 4xx, not the target's.
        bad = self.plain_client(egress_port)
        bad.send(b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(bad.read_response().status, 400)
        label = listener_label("egress", egress_port)
        self.wait_stat(egress, "ringside_http_listener_http_code_proxy_4xx_total", "listener",
                       label, 1)
        self.wait_stat(egress, "ringside_http_listener_http_code_target_4xx_total", "listener",
                       label, 1)


# ---------------------------------------------------------------------------------------
# Drain


class DrainTest(HttpCase):
    def test_sigterm_lets_the_in_flight_response_finish_with_connection_close(self):
        up = self.upstream(su.serve(su.by_path({"/slow": su.delayed(1000, su.echo())})))
        ingress, port = self.start_http_ingress(up.port, ["--drain-timeout", "5s"], threads=1)
        client = self.tls_client(port)
        first = self.exchange(client, request("GET", "/fast"))
        self.assertEqual((first.status, first.close), (200, False), first)
        client.send(request("GET", "/slow"))
        self.assertTrue(harness.wait_until(lambda: up.request_count() == 2, timeout=5),
                        self.diag())
        ingress.signal(signal.SIGTERM)
        try:
            resp = client.read_response(timeout=8)
        except ClosedEarly as e:
            self.fail_with_diag(f"in-flight response lost on SIGTERM: {e}")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["target"], "/slow")
        self.assertTrue(resp.close, f"no Connection: close while draining: {resp!r}")
        self.assert_closed(client, what="the drained connection")
        self.assertEqual(ingress.wait(10), 0, self.diag())


# ---------------------------------------------------------------------------------------
# Real peers: curl and nginx

_NGINX_CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format conn '$connection $connection_requests "$request" $status';
    access_log {dir}/access.log conn;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
        location / {{ }}
        location = /upload {{
            client_max_body_size 10m;
            return 201 "stored\\n";
        }}
    }}
}}
"""


class RealPeerTest(HttpCase):
    def start_nginx(self):
        nginx = harness.require_tool("nginx")
        base = os.path.join(self.workdir, "nginx")
        www = os.path.join(base, "www")
        os.makedirs(www)
        self.index = b"<html><body>hello from nginx</body></html>\n"
        self.big = os.urandom(5 * MB)
        with open(os.path.join(www, "index.html"), "wb") as f:
            f.write(self.index)
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(self.big)
        port = harness.free_port()
        config = os.path.join(base, "nginx.conf")
        with open(config, "w") as f:
            f.write(_NGINX_CONFIG.format(dir=base, port=port))
        proc = self.start("nginx", [nginx, "-c", config, "-p", base])

        def up():
            if proc.poll() is not None:
                return True
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                return True
            except OSError:
                return False

        if not harness.wait_until(up, timeout=10) or proc.poll() is not None:
            self.fail_with_diag("nginx did not start")
        self.nginx_log = os.path.join(base, "access.log")
        return port

    def nginx_round_trip(self, client):
        resp = self.exchange(client, request("GET", "/index.html"))
        self.assertEqual((resp.status, resp.body), (200, self.index), resp)
        self.assertEqual(resp.header("server"), ["ringside"], resp)
        resp = self.exchange(client, request("HEAD", "/big.bin"), "HEAD")
        self.assertEqual((resp.status, resp.one("content-length"), resp.body),
                         (200, str(len(self.big)), b""), resp)
        resp = self.exchange(client, request("POST", "/upload", body=os.urandom(100 * 1024)),
                             "POST")
        self.assertEqual((resp.status, resp.body), (201, b"stored\n"), resp)
        resp = self.exchange(client, request("GET", "/big.bin"), timeout=30)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(hashlib.sha256(resp.body).digest(), hashlib.sha256(self.big).digest())
        resp = self.exchange(client, request("GET", "/nothing-here"))
        self.assertEqual(resp.status, 404, resp)
        # nginx saw all five requests on one connection.
        def log():
            with open(self.nginx_log) as f:
                lines = f.read().splitlines()
            return lines if len(lines) >= 5 else None
        lines = harness.wait_until(log, timeout=5)
        self.assertTrue(lines, self.diag())
        self.assertEqual(len({line.split()[0] for line in lines}), 1, lines)
        self.assertEqual([line.split()[1] for line in lines], ["1", "2", "3", "4", "5"], lines)

    def test_nginx_behind_the_ingress(self):
        port = self.start_nginx()
        _, ingress_port = self.start_http_ingress(port)
        self.nginx_round_trip(self.tls_client(ingress_port))

    def test_nginx_behind_egress_and_ingress(self):
        port = self.start_nginx()
        _, _, _, egress_port = self.start_http_chain(port)
        self.nginx_round_trip(self.plain_client(egress_port))

    def test_curl_keep_alive_through_the_ingress(self):
        curl = harness.require_tool("curl")
        up = self.upstream(su.serve())
        _, port = self.start_http_ingress(up.port)
        url = f"https://{SERVICE}:{port}"
        done = subprocess.run(
            [curl, "-sS", "--max-time", "10", "--cacert", self.ca, "--resolve",
             f"{SERVICE}:{port}:{LOOPBACK}", "-w", "%{http_code} %{num_connects}\n",
             "-o", "/dev/null", f"{url}/one", "-o", "/dev/null", f"{url}/two",
             "-o", "/dev/null", f"{url}/three"], capture_output=True, timeout=30)
        self.assertEqual(done.returncode, 0, f"{done.stderr!r}\n{self.diag()}")
        self.assertEqual(done.stdout.decode().split("\n")[:3],
                         ["200 1", "200 0", "200 0"], "curl reused its connection")
        self.assertEqual([r.target for r in up.requests()], ["/one", "/two", "/three"])
        self.assertEqual(up.connection_count(), 1)
        self.assertEqual(fields(up.requests()[0]).get("host"), [f"{SERVICE}:{port}"])


if __name__ == "__main__":
    harness.main()
