#!/usr/bin/env python3
"""Differential test: ringside's HTTP/1.1 parser against h11 (an independent, strict
parser) on the corpus in fuzz/corpus/.

For every file, each message ringside accepts must also be accepted by h11 with the same
start line (method and target, or status), the same end offset in the stream (the same
message boundary: the thing request smuggling attacks) and the same body bytes. If
ringside reads the whole file cleanly, h11 must too. Where ringside refuses what h11
accepts, ringside is stricter, which is allowed and only counted.

A message ringside accepts and h11 refuses is a failure unless its file is listed in
KNOWN_DIVERGENCES with the reason (docs/http-parser.md explains each).

usage: differential.py HTTP_DUMP CORPUS_DIR     (exit 77 = skipped: no h11)
"""
import os
import subprocess
import sys

try:
    import h11
except ImportError:
    print("python3-h11 is not installed (apt-get install python3-h11): skipping")
    sys.exit(77)

# file name (without the NNN- prefix) -> why ringside may accept what h11 refuses.
KNOWN_DIVERGENCES = {
    "request/leading-crlf.http":
        "RFC 9112 2.2: a server SHOULD ignore empty lines before the request-line; h11 refuses "
        "them. The proxy re-emits a normalized head, so the empty line never reaches upstream.",
}


def h11_messages(data, role):
    """Returns (messages, verdict): messages are (start, end offset, body) for each message
    h11 completes; verdict is 'ok', 'error: ...' or 'tunnel'. One h11 connection per
    message, fed what is left, so pipelined messages are read one after the other."""
    messages = []
    offset = 0
    rest = data
    while True:
        if role == "request":
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        else:
            conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
            conn.send(h11.Request(method="GET", target="/", headers=[("Host", "example.com")]))
            conn.send(h11.EndOfMessage())
        conn.receive_data(rest)
        conn.receive_data(b"")
        start = None
        body = b""
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as e:
                return messages, "error: %s" % e
            if isinstance(event, h11.Request):
                start = "%s %s" % (event.method.decode("latin-1"), event.target.decode("latin-1"))
            elif isinstance(event, h11.InformationalResponse):
                messages.append(("INTERIM", event.status_code, None))
            elif isinstance(event, h11.Response):
                start = str(event.status_code)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                trailing, _ = conn.trailing_data
                end = offset + len(rest) - len(trailing)
                messages.append((start, end, body))
                offset = end
                rest = trailing
                break
            elif isinstance(event, h11.ConnectionClosed):
                return messages, "ok"
            elif event is h11.NEED_DATA:
                return messages, "error: incomplete"
            elif event is h11.PAUSED:
                return messages, "tunnel"
        if not rest:
            return messages, "ok"


def ringside_messages(dump, role, files):
    out = subprocess.run([dump, role] + files, check=True, capture_output=True).stdout
    results = {}
    current = None
    for line in out.decode("latin-1").splitlines():
        if line.startswith("FILE "):
            current = line[5:]
            results[current] = ([], None)
        elif line.startswith("INTERIM "):
            results[current][0].append(("INTERIM", int(line.split()[1]), None))
        elif line.startswith("MSG "):
            start, end, body = line[4:].rsplit(" ", 2)
            results[current][0].append(
                (start, int(end), b"" if body == "-" else bytes.fromhex(body)))
        elif line.startswith("END "):
            results[current] = (results[current][0], line[4:])
    return results


def main():
    dump, corpus = sys.argv[1], sys.argv[2]
    failures = []
    stats = {"agree": 0, "stricter": 0, "known": 0}
    for role in ("request", "response"):
        folder = os.path.join(corpus, role)
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
        ours = ringside_messages(dump, role, files)
        for path in files:
            name = os.path.basename(path)
            key = role + "/" + (name.split("-", 1)[1] if name[:3].isdigit() else name)
            with open(path, "rb") as f:
                data = f.read()
            r_msgs, r_end = ours[path]
            h_msgs, h_end = h11_messages(data, role)
            problems = []
            for i, msg in enumerate(r_msgs):
                if i >= len(h_msgs):
                    problems.append("ringside accepted message %d %r, h11: %s" % (i, msg[:2], h_end))
                    break
                if msg != h_msgs[i]:
                    problems.append("message %d differs: ringside %r / h11 %r" %
                                    (i, msg[:2] + (len(msg[2] or b""),),
                                     h_msgs[i][:2] + (len(h_msgs[i][2] or b""),)))
                    break
            if not problems and r_end == "ok" and (h_end != "ok" or len(h_msgs) != len(r_msgs)):
                problems.append("ringside read the stream cleanly, h11: %s after %d messages" %
                                (h_end, len(h_msgs)))
            if problems:
                if key in KNOWN_DIVERGENCES:
                    stats["known"] += 1
                else:
                    failures.append("%s: %s" % (path, "; ".join(problems)))
            elif r_end.startswith("error") and (h_end == "ok" or len(h_msgs) > len(r_msgs)):
                stats["stricter"] += 1
                print("stricter than h11: %s: ringside %s" % (key, r_end))
            else:
                stats["agree"] += 1
    print("agree: %(agree)d, ringside stricter: %(stricter)d, known divergences: %(known)d" % stats)
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
