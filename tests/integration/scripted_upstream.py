"""A programmable HTTP/1.1 upstream for the HTTP proxy's integration tests.

Every accepted connection runs a script (a Python callable given the connection) in its
own thread, and every byte the proxy sent on it is recorded, so a test can assert exactly
what reached the upstream: nothing for a smuggling attempt, re-chunked bodies, the headers
the proxy removed or added, how many connections it opened and how many requests each one
carried.

    upstream = ScriptedUpstream(serve())                  # every connection: echo server
    upstream = ScriptedUpstream(serve(), scripts=[reset_after_request()])
                                                          # first connection resets, then echo
    upstream.port, upstream.connection_count(), upstream.connections[0].raw_bytes(),
    upstream.requests()                                   # parsed, in arrival order

A script is a callable taking an UpstreamConnection. `serve(responder)` is the usual one: a
keep-alive loop that reads requests (tolerantly: it is the proxy's output under test, not
input to validate) and answers each with what the responder returns. Responders are
callables (request, connection) -> bytes to send, or None when they handled the connection
themselves (sent, reset, closed). Building blocks below: echo, fixed raw bytes (broken
framing included), status codes, delays, "fail N times then answer", dispatch by path,
reset (SO_LINGER 0), close without answering, 100-continue, WebSocket 101 then echo.

Python standard library only; run this file to self-check it against a plain client.
"""

import base64
import errno
import hashlib
import json
import socket
import struct
import threading
import time

LOOPBACK = "127.0.0.1"
_RECV = 256 * 1024


class UpstreamClosed(Exception):
    """The proxy closed (or reset) the connection while the script expected more."""


class Request:
    """One request as the upstream received it."""

    def __init__(self, method, target, version, headers, raw_head):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # [(name as received, value)], in order
        self.raw_head = raw_head  # the bytes of the head, CRLFCRLF included
        self.body = b""  # decoded payload
        self.raw_body = b""  # the body bytes as framed on the wire (chunk lines included)
        self.chunked = False
        self.chunk_sizes = []  # the size lines of a chunked body, as received (text)
        self.trailers = []
        self.complete = False  # the whole body arrived

    def header(self, name):
        """All values of the fields named name (any case), in order."""
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has_token(self, name, token):
        """True when a comma list field (Connection, Expect...) holds token."""
        for value in self.header(name):
            if token.lower() in (t.strip().lower() for t in value.split(",")):
                return True
        return False

    def __repr__(self):
        return f"<Request {self.method} {self.target} {self.version} body={len(self.body)}>"


class ConnectionRecord:
    """What one upstream connection saw. Read by the test while the script runs."""

    def __init__(self, index, peer):
        self.index = index
        self.peer = peer
        self._lock = threading.Lock()
        self._raw = bytearray()
        self.requests = []
        self.peer_closed = False  # EOF or reset from the proxy
        self.peer_reset = False
        self.closed = False  # the script's side is closed
        self.error = None  # an exception the script raised (not UpstreamClosed)

    def append(self, data):
        with self._lock:
            self._raw += data

    def raw_bytes(self):
        with self._lock:
            return bytes(self._raw)

    def byte_count(self):
        with self._lock:
            return len(self._raw)


class UpstreamConnection:
    """The script's view of one accepted connection: buffered reads that are recorded,
    request parsing, and ways to answer or end the connection."""

    def __init__(self, upstream, sock, record):
        self.upstream = upstream
        self.sock = sock
        self.record = record
        self.buf = bytearray()
        self.closed = False

    # -- reading ------------------------------------------------------------------------

    def recv_some(self, timeout=None):
        """Reads what is available into the buffer. Returns the number of new bytes, 0 at
        EOF; raises socket.timeout when nothing came within timeout seconds."""
        self.sock.settimeout(timeout if timeout is not None else self.upstream.io_timeout)
        try:
            data = self.sock.recv(_RECV)
        except ConnectionResetError:
            self.record.peer_closed = True
            self.record.peer_reset = True
            return 0
        if not data:
            self.record.peer_closed = True
            return 0
        self.record.append(data)
        self.buf += data
        return len(data)

    def _need(self, n):
        while len(self.buf) < n:
            if self.recv_some() == 0:
                raise UpstreamClosed(f"EOF with {len(self.buf)} of {n} bytes")

    def _take(self, n):
        self._need(n)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _line(self, limit=1 << 20):
        """One line up to and including LF (the proxy must send CRLF; kept as received)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                return self._take(i + 1)
            if len(self.buf) > limit:
                raise UpstreamClosed("line too long")
            if self.recv_some() == 0:
                raise UpstreamClosed("EOF inside a line")

    def wait_readable(self, timeout):
        """True when bytes (or EOF) are available within timeout seconds."""
        if self.buf:
            return True
        try:
            self.recv_some(timeout)
            return True  # data or EOF: either way the next read will not wait
        except socket.timeout:
            return False

    def read_head(self):
        """The next request head, or None when the proxy closed the connection first."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if self.recv_some() == 0:
                if self.buf:
                    raise UpstreamClosed(f"EOF inside a head: {bytes(self.buf[:200])!r}")
                return None
        raw_head = self._take(end + 4)
        lines = raw_head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        method, target, version = (parts + ["", "", ""])[:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip(" \t")))
        request = Request(method, target, version, headers, raw_head)
        with self.upstream.lock:
            self.record.requests.append(request)
        return request

    def read_body(self, request):
        """Reads the body the head announces (chunked or Content-Length) into request."""
        raw = []
        body = []
        if any("chunked" in v.lower() for v in request.header("transfer-encoding")):
            request.chunked = True
            while True:
                line = self._line()
                raw.append(line)
                size_text = line.rstrip(b"\r\n").decode("latin-1")
                request.chunk_sizes.append(size_text)
                size = int(size_text.split(";")[0].strip(), 16)
                if size == 0:
                    break
                data = self._take(size)
                raw.append(data)
                body.append(data)
                raw.append(self._take(2))
            while True:  # trailer section up to the empty line
                line = self._line()
                raw.append(line)
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                request.trailers.append((name, value.strip()))
        else:
            lengths = request.header("content-length")
            remaining = int(lengths[0]) if lengths else 0
            while remaining > 0:
                if not self.buf and self.recv_some() == 0:
                    raise UpstreamClosed(f"EOF with {remaining} body bytes missing")
                piece = bytes(self.buf[:remaining])
                del self.buf[:len(piece)]
                raw.append(piece)
                body.append(piece)
                remaining -= len(piece)
        request.raw_body = b"".join(raw)
        request.body = b"".join(body)
        request.complete = True
        return request

    def read_request(self, on_head=None):
        """A whole request (head, then body), or None at EOF before a head. on_head(request,
        connection) runs between head and body (e.g. to send 100 Continue)."""
        request = self.read_head()
        if request is None:
            return None
        if on_head is not None:
            on_head(request, self)
        return self.read_body(request)

    def wait_eof(self, timeout):
        """Reads (and records) until the proxy closes; True if it did within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                if self.recv_some(remaining) == 0:
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True

    # -- writing and ending -------------------------------------------------------------

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise UpstreamClosed(f"send failed: {e}") from e

    def close(self):
        if not self.closed:
            self.closed = True
            self.record.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def reset(self):
        """Closes with SO_LINGER 0: the proxy gets a TCP RST, not a FIN."""
        if not self.closed:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close()


class ScriptedUpstream:
    """A TCP server on 127.0.0.1 whose connections run scripts. scripts[i] runs on the
    i-th accepted connection (0-based); later connections run default."""

    def __init__(self, default=None, scripts=(), io_timeout=30):
        self.default = default if default is not None else serve()
        self.scripts = list(scripts)
        self.io_timeout = io_timeout
        self.lock = threading.Lock()
        self.connections = []
        self._socks = []
        self._stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _accept_loop(self):
        while not self._stopping:
            try:
                sock, peer = self.sock.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                index = len(self.connections)
                record = ConnectionRecord(index, peer)
                self.connections.append(record)
                self._socks.append(sock)
                script = self.scripts[index] if index < len(self.scripts) else self.default
            threading.Thread(target=self._run, args=(script, sock, record), daemon=True).start()

    def _run(self, script, sock, record):
        conn = UpstreamConnection(self, sock, record)
        try:
            script(conn)
        except (UpstreamClosed, OSError):
            pass
        except Exception as e:  # a bug in a script: keep it for the test to see
            record.error = repr(e)
        finally:
            conn.close()

    # -- what the tests read ------------------------------------------------------------

    def connection_count(self):
        with self.lock:
            return len(self.connections)

    def total_bytes(self):
        with self.lock:
            records = list(self.connections)
        return sum(r.byte_count() for r in records)

    def requests(self):
        """Every request head received, over all connections, in connection order."""
        with self.lock:
            return [r for c in self.connections for r in c.requests]

    def request_count(self):
        return len(self.requests())

    def errors(self):
        with self.lock:
            return [c.error for c in self.connections if c.error]

    def close(self):
        self._stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------
# Responses


def response(status=200, body=b"", headers=(), reason=None, chunked=False, version="HTTP/1.1",
             content_length=True):
    """Bytes of a response. chunked: the body as one chunk plus the last chunk;
    content_length=False and not chunked: no framing field (delimited by close)."""
    reason = reason if reason is not None else _REASONS.get(status, "Status")
    lines = [f"{version} {status} {reason}"]
    lines += [f"{n}: {v}" for n, v in headers]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        framed = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        if content_length:
            lines.append(f"Content-Length: {len(body)}")
        framed = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + framed


_REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
            204: "No Content", 304: "Not Modified", 400: "Bad Request", 404: "Not Found",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def describe(request):
    """The JSON document echo() answers with: what the upstream saw of the request."""
    return {
        "method": request.method,
        "target": request.target,
        "version": request.version,
        "headers": request.headers,
        "chunked": request.chunked,
        "body_length": len(request.body),
        "body_sha256": hashlib.sha256(request.body).hexdigest(),
    }


# ---------------------------------------------------------------------------------------
# Responders: (request, connection) -> bytes to send, or None (handled)


def echo(headers=(), status=200):
    """200 with a JSON description of the request (method, target, headers, body digest)."""
    def responder(request, conn):
        body = json.dumps(describe(request)).encode()
        return response(status, body, headers=[("Content-Type", "application/json"), *headers])
    return responder


def fixed(raw):
    """The same raw bytes for every request (broken framing welcome)."""
    return lambda request, conn: raw


def status(code, body=b"", headers=()):
    return lambda request, conn: response(code, body, headers=headers)


def chunked_body(body, chunk=16 * 1024, headers=()):
    """200 with body sent as chunks of the given size."""
    def responder(request, conn):
        lines = ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked"]
        lines += [f"{n}: {v}" for n, v in headers]
        out = [("\r\n".join(lines) + "\r\n\r\n").encode()]
        for i in range(0, len(body), chunk):
            piece = body[i:i + chunk]
            out.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        out.append(b"0\r\n\r\n")
        return b"".join(out)
    return responder


def delayed(ms, then):
    """Waits ms milliseconds after the request, then answers with then."""
    def responder(request, conn):
        time.sleep(ms / 1000)
        return then(request, conn)
    return responder


class FailFirst:
    """Answers the first n requests (over all connections) with status code, the rest
    with then. Thread-safe; .failed counts the failures sent."""

    def __init__(self, n, code=503, then=None, body=b"try again\n"):
        self.n = n
        self.code = code
        self.then = then if then is not None else echo()
        self.body = body
        self.failed = 0
        self._lock = threading.Lock()

    def __call__(self, request, conn):
        with self._lock:
            fail = self.failed < self.n
            if fail:
                self.failed += 1
        if fail:
            return response(self.code, self.body)
        return self.then(request, conn)


def by_path(routes, default=None):
    """Dispatches on the longest matching target prefix: routes {prefix: responder}."""
    default = default if default is not None else echo()
    ordered = sorted(routes.items(), key=lambda kv: -len(kv[0]))

    def responder(request, conn):
        for prefix, target in ordered:
            if request.target.startswith(prefix):
                return target(request, conn)
        return default(request, conn)
    return responder


def fixed_then_close(raw):
    """Sends raw (e.g. a head and part of its body), then closes at once."""
    def responder(request, conn):
        conn.send(raw)
        conn.close()
    return responder


def reset_now(request, conn):
    """Resets the connection (TCP RST) without a response byte."""
    conn.reset()


def close_now(request, conn):
    """Closes the connection (FIN) without a response byte."""
    conn.close()


def never(request, conn):
    """Never answers; keeps the connection until the proxy closes it (or io_timeout)."""
    conn.wait_eof(conn.upstream.io_timeout)
    conn.close()


def websocket_echo(greeting=b""):
    """Answers an Upgrade: websocket request with 101 (with the real Sec-WebSocket-Accept),
    sends greeting, then echoes every byte until EOF and half-closes."""
    def responder(request, conn):
        key = (request.header("sec-websocket-key") or [""])[0]
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        conn.send(response(101, headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                         ("Sec-WebSocket-Accept", accept)],
                           content_length=False))
        if greeting:
            conn.send(greeting)
        if conn.buf:
            data = bytes(conn.buf)
            del conn.buf[:]
            conn.send(data)
        while True:
            try:
                n = conn.recv_some()
            except socket.timeout:
                break
            if n == 0:
                break
            data = bytes(conn.buf)
            del conn.buf[:]
            conn.send(data)
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()
    return responder


def send_continue(request, conn):
    """on_head hook: 100 Continue when the request expects it."""
    if request.has_token("expect", "100-continue"):
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")


# ---------------------------------------------------------------------------------------
# Scripts: (connection) -> None


def serve(responder=None, max_requests=None, idle_close_ms=None, on_head=None,
          close_delay_ms=0):
    """A keep-alive loop: read a request, answer with responder (only the head of it for
    HEAD requests), repeat until the proxy closes. max_requests: close (FIN) right after that many answers, without announcing it
    (no Connection: close): the pool race. idle_close_ms: close a connection that stays
    idle that long between requests. close_delay_ms: sleep before such a close."""
    responder = responder if responder is not None else echo()

    def script(conn):
        served = 0
        while True:
            if idle_close_ms is not None and served > 0:
                if not conn.wait_readable(idle_close_ms / 1000):
                    conn.close()
                    return
            request = conn.read_request(on_head)
            if request is None:
                return
            out = responder(request, conn)
            if conn.closed:
                return
            if out:
                if request.method == "HEAD":  # a response to HEAD has no body
                    out = out[:out.find(b"\r\n\r\n") + 4]
                conn.send(out)
            served += 1
            if max_requests is not None and served >= max_requests:
                if close_delay_ms:
                    time.sleep(close_delay_ms / 1000)
                conn.close()
                return
            if request.has_token("connection", "close"):
                conn.close()
                return
    return script


def reset_after_request():
    """Reads one request, then resets the connection without answering."""
    return serve(reset_now)


def close_after_request():
    """Reads one request, then closes the connection without answering."""
    return serve(close_now)


def raw_then_wait(raw):
    """Reads one request, answers raw (e.g. broken framing), then keeps reading: any
    further request on this connection is recorded (the proxy must not reuse it)."""
    return serve(fixed(raw))


# ---------------------------------------------------------------------------------------
# Self-check: python3 scripted_upstream.py


def _client_exchange(port, data, read_timeout=5, half_close=True):
    """Sends data (then half-closes), reads until the server closes: (bytes, ending)."""
    with socket.create_connection((LOOPBACK, port), timeout=read_timeout) as s:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (ConnectionResetError, BrokenPipeError):
            return b"", "reset"
        except OSError as e:
            # A reset that lands between the send and the half-close leaves the socket
            # unconnected (ENOTCONN): the same outcome as a reset seen by recv.
            if e.errno == errno.ENOTCONN:
                return b"", "reset"
            raise
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out, "reset"
            except socket.timeout:
                return out, "timeout"
            if not chunk:
                return out, "eof"
            out += chunk


def _self_check():
    import unittest

    class SelfCheck(unittest.TestCase):
        def up(self, *args, **kwargs):
            u = ScriptedUpstream(*args, **kwargs)
            self.addCleanup(u.close)
            return u

        def test_echo_keep_alive_records_requests_and_bytes(self):
            u = self.up()
            req = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n")
            out, ending = _client_exchange(u.port, req)
            self.assertEqual(ending, "eof")
            self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 2)
            self.assertEqual(u.connection_count(), 1)
            reqs = u.requests()
            self.assertEqual([r.target for r in reqs], ["/a", "/b"])
            self.assertEqual(reqs[1].body, b"abc")
            self.assertEqual(reqs[1].chunk_sizes, ["3;e=1", "0"])
            self.assertEqual(reqs[1].trailers, [("T", "1")])
            self.assertTrue(harness_wait(lambda: u.connections[0].peer_closed))
            self.assertEqual(u.connections[0].raw_bytes(), req)
            self.assertIn(b'"body_length": 3', out)

        def test_scripts_per_connection_reset_then_serve(self):
            u = self.up(serve(), scripts=[reset_after_request()])
            out, ending = _client_exchange(u.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual((out, ending), (b"", "reset"))
            out, ending = _client_exchange(u.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"200 OK", out)
            self.assertEqual(u.connection_count(), 2)

        def test_close_after_n_requests_without_announcing_it(self):
            u = self.up(serve(max_requests=1))
            data, ending = _client_exchange(u.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                            half_close=False)
            self.assertEqual(ending, "eof")
            self.assertIn(b"200 OK", data)
            self.assertNotIn(b"close", data.split(b"\r\n\r\n")[0].lower())

        def test_idle_close(self):
            # Without the idle close, the read would time out (the client never closes).
            u = self.up(serve(idle_close_ms=100))
            data, ending = _client_exchange(u.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                            half_close=False)
            self.assertEqual(ending, "eof")
            self.assertIn(b"200 OK", data)
            self.assertTrue(u.connections[0].closed)
            self.assertFalse(u.connections[0].peer_closed)

        def test_fail_first_across_connections(self):
            u = self.up(serve(FailFirst(2)))
            codes = []
            for _ in range(3):
                out, _ = _client_exchange(
                    u.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                codes.append(out.split(b" ")[1])
            self.assertEqual(codes, [b"503", b"503", b"200"])

        def test_continue_and_websocket(self):
            u = self.up(serve(echo(), on_head=send_continue))
            with socket.create_connection((LOOPBACK, u.port), timeout=5) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                          b"Content-Length: 2\r\n\r\n")
                self.assertEqual(s.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
                s.sendall(b"hi")
                self.assertIn(b"200 OK", s.recv(1000))
            w = self.up(serve(websocket_echo(b"hello")))
            with socket.create_connection((LOOPBACK, w.port), timeout=5) as s:
                s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"\r\n")
                data = b""
                while not data.endswith(b"hello"):
                    data += s.recv(1000)
                self.assertIn(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", data)
                s.sendall(b"ping")
                self.assertEqual(s.recv(100), b"ping")

        def test_raw_broken_framing_and_delay(self):
            raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            u = self.up(serve(delayed(500, fixed(raw))))
            with socket.create_connection((LOOPBACK, u.port), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                s.settimeout(0.05)  # well inside the 500 ms delay: nothing yet
                self.assertRaises(socket.timeout, s.recv, 100)
                s.settimeout(5)
                self.assertEqual(s.recv(1000), raw)

    def harness_wait(predicate, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    suite = unittest.TestLoader().loadTestsFromTestCase(SelfCheck)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    raise SystemExit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    _self_check()
