"""HTTP/2 clients on protocol=http listeners (issue 11): the ingress negotiates h2 with ALPN
(or takes the h2 preface without ALPN) and serves each stream as its own exchange to the
HTTP/1.1 app: per-request balancing, retries, timeouts, the access log and the stats work
per stream; an egress takes h2c with prior knowledge (what gRPC clients send). Real clients
(curl --http2 and --http2-prior-knowledge, h2load, nghttp) and hand-made frames
(python3-h2) for what real clients never send. Run by Debian's /usr/bin/python3, where
python3-h2 lives."""

import json
import os
import socket
import subprocess
import threading
import time

import harness
from harness import LOOPBACK, SERVICE
import scripted_upstream as su

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings
except ImportError:  # python3-h2 is in tools/packages.txt: require_tool reports it
    h2 = None


class H2Client:
    """A hand-driven HTTP/2 client (python3-h2) over TLS with ALPN h2, or over plaintext."""

    def __init__(self, port, ca=None, tls=True, alpn=("h2",), window=None, validate=True):
        raw = harness.connect(port)
        if tls:
            context = harness.tls_client_context(ca)
            if alpn:
                context.set_alpn_protocols(list(alpn))
            self.sock = context.wrap_socket(raw, server_hostname=SERVICE)
            self.alpn = self.sock.selected_alpn_protocol()
        else:
            self.sock = raw
            self.alpn = None
        self.sock.settimeout(10)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_outbound_headers=validate,
                                           normalize_outbound_headers=validate,
                                           validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.events = []
        self.closed = False
        self.auto_window = True

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def request(self, path="/", method="GET", body=None, headers=(), end=True, authority=None):
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "https"),
                  (":authority", authority or SERVICE), (":path", path), *headers]
        self.conn.send_headers(sid, fields, end_stream=end and body is None)
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        """Sends body as the windows allow, reading the peer meanwhile."""
        at = 0
        deadline = time.monotonic() + 20
        while at < len(body):
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                if time.monotonic() > deadline:
                    raise AssertionError("no window opened for the request body")
                self.pump(0.2)
                continue
            self.conn.send_data(sid, body[at:at + room])
            at += room
            self.flush()
        if end:
            self.conn.end_stream(sid)
        self.flush()

    def pump(self, timeout):
        """Reads what arrives within timeout; returns the new events."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return []
        except OSError:
            data = b""
        finally:
            self.sock.settimeout(10)
        if not data:
            self.closed = True
            return []
        new = self.conn.receive_data(data)
        for event in new:
            if isinstance(event, h2.events.DataReceived) and self.auto_window:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.flush()
        self.events.extend(new)
        return new

    def wait(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.closed or time.monotonic() > deadline:
                return predicate()
            self.pump(0.2)
        return True

    def stream_done(self, sid):
        return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                   and e.stream_id == sid for e in self.events)

    def response(self, sid, timeout=10):
        """(status, headers dict, body, trailers dict, reset code or None)."""
        if not self.wait(lambda: self.stream_done(sid), timeout):
            raise AssertionError(f"stream {sid} did not end; events: {self.events}")
        status, headers, body, trailers, reset = None, {}, b"", {}, None
        for e in self.events:
            if getattr(e, "stream_id", None) != sid:
                continue
            if isinstance(e, h2.events.ResponseReceived):
                headers = dict(e.headers)
                status = int(headers[":status"])
            elif isinstance(e, h2.events.DataReceived):
                body += e.data
            elif isinstance(e, h2.events.TrailersReceived):
                trailers = dict(e.headers)
            elif isinstance(e, h2.events.StreamReset):
                reset = e.error_code
        return status, headers, body, trailers, reset

    def goaway(self):
        for e in self.events:
            if isinstance(e, h2.events.ConnectionTerminated):
                return e
        return None



class H2cApp:
    """An h2c (prior knowledge) application server made with python3-h2, one thread per
    connection: it answers every stream with respond(request) -> (status, headers, body,
    trailers), and records what it saw. refuse_first: answer that many streams (over all
    connections) with RST_STREAM(REFUSED_STREAM); max_streams: its
    SETTINGS_MAX_CONCURRENT_STREAMS; delay: seconds before each answer, or a function of
    the request's index (0-based, over all connections) giving them."""

    def __init__(self, respond=None, refuse_first=0, max_streams=100, delay=0.0,
                 goaway_after=None):
        self.respond = respond or (lambda req: (200, [("content-type", "text/plain")],
                                                b"h2c app: " + req["path"].encode(), []))
        self.refuse_left = refuse_first
        self.max_streams = max_streams
        self.delay = delay
        self.goaway_after = goaway_after
        self.lock = threading.Lock()
        self.requests = []      # every request answered: {"headers", "path", "body", "trailers"}
        self.received = []      # the headers of every request, as it arrived
        self.resets = []        # (stream id, error code) received
        self.over_limit = 0     # streams refused over max_streams
        self.connections = 0
        self.peak_streams = 0
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        try:
            self.listener.close()
        except OSError:
            pass

    def _accept(self):
        while not self.closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=config)
        conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        # The limit is advertised, and enforced below as nghttp2 and Go servers do: a
        # stream over it is refused (RST_STREAM REFUSED_STREAM), the connection goes on.
        # (python3-h2 itself would fail the whole connection.)
        conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2 ** 31 - 1})
        streams = {}
        answered = 0
        pending = []  # (due time, stream id)
        sock.settimeout(0.02)
        try:
            while not self.closed:
                try:
                    data = sock.recv(65536)
                    if not data:
                        return
                    events = conn.receive_data(data)
                except (socket.timeout, TimeoutError):
                    events = []
                for e in events:
                    if isinstance(e, h2.events.RequestReceived):
                        headers = dict(e.headers)
                        with self.lock:
                            index = len(self.received)
                            self.received.append(e.headers)
                        streams[e.stream_id] = {"headers": e.headers, "path": headers.get(":path"),
                                                "body": b"", "trailers": [], "index": index}
                        with self.lock:
                            over = len(streams) > self.max_streams
                            if over:
                                self.over_limit += 1
                            else:
                                self.peak_streams = max(self.peak_streams, len(streams))
                            refuse = over or self.refuse_left > 0
                            if refuse and not over:
                                self.refuse_left -= 1
                        if refuse:
                            conn.reset_stream(e.stream_id, error_code=7)
                            del streams[e.stream_id]
                    elif isinstance(e, h2.events.DataReceived):
                        if e.stream_id in streams:
                            streams[e.stream_id]["body"] += e.data
                        conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    elif isinstance(e, h2.events.TrailersReceived):
                        if e.stream_id in streams:
                            streams[e.stream_id]["trailers"] = e.headers
                    elif isinstance(e, h2.events.StreamEnded):
                        if e.stream_id in streams:
                            index = streams[e.stream_id]["index"]
                            delay = self.delay(index) if callable(self.delay) else self.delay
                            pending.append((time.monotonic() + delay, e.stream_id))
                    elif isinstance(e, h2.events.StreamReset):
                        with self.lock:
                            self.resets.append((e.stream_id, e.error_code))
                        streams.pop(e.stream_id, None)
                    elif isinstance(e, h2.events.ConnectionTerminated):
                        return
                now = time.monotonic()
                for item in [p for p in pending if p[0] <= now]:
                    pending.remove(item)
                    sid = item[1]
                    req = streams.pop(sid, None)
                    if req is None:
                        continue
                    status, headers, body, trailers = self.respond(req)
                    conn.send_headers(sid, [(":status", str(status)), *headers],
                                      end_stream=not body and not trailers)
                    at = 0
                    while at < len(body):
                        room = min(conn.local_flow_control_window(sid),
                                   conn.max_outbound_frame_size)
                        if room <= 0:
                            sock.sendall(conn.data_to_send())
                            sock.settimeout(1)
                            more = sock.recv(65536)
                            if not more:
                                return
                            conn.receive_data(more)
                            continue
                        chunk = body[at:at + room]
                        at += len(chunk)
                        conn.send_data(sid, chunk,
                                       end_stream=at >= len(body) and not trailers)
                    if trailers:
                        conn.send_headers(sid, trailers, end_stream=True)
                    with self.lock:
                        self.requests.append(req)
                    answered += 1
                    if self.goaway_after is not None and answered >= self.goaway_after:
                        conn.close_connection(last_stream_id=sid)
                        sock.sendall(conn.data_to_send())
                        time.sleep(0.2)
                        return
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
                sock.settimeout(0.02)
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            sock.close()


class Http2Case(harness.PkiCase):
    def setUp(self):
        super().setUp()
        if h2 is None:
            harness.missing_python_package("python3-h2")

    def upstream(self, default=None, scripts=(), **kwargs):
        up = su.ScriptedUpstream(default, scripts, **kwargs)
        self.addCleanup(up.close)
        return up

    def client(self, port, **kwargs):
        c = H2Client(port, ca=self.ca, **kwargs)
        self.addCleanup(c.close)
        return c

    def h2c_app(self, **kwargs):
        app = H2cApp(**kwargs)
        self.addCleanup(app.close)
        return app

    def curl(self, url, *options, tls=True):
        """Returns (exit status, body, "<HTTP version> <status>", stderr)."""
        curl = harness.require_tool("curl")
        argv = [curl, "-sS", "--max-time", "10", "-w", "\n%{http_version} %{http_code}"]
        if tls:
            port = int(url.split(":")[2].split("/")[0])
            argv += ["--cacert", self.ca, "--resolve", f"{SERVICE}:{port}:{LOOPBACK}"]
        done = subprocess.run(argv + list(options) + [url], capture_output=True, timeout=30)
        body, _, tail = done.stdout.rpartition(b"\n")
        return done.returncode, body, tail.decode(), done.stderr.decode(errors="replace")

    def http_ingress(self, app_port, extra=(), **kwargs):
        return self.start_ingress(app_port, self.cert, self.key, options="protocol=http",
                                  extra=list(extra), **kwargs)


class RealClientsTest(Http2Case):
    """curl, h2load and nghttp through a protocol=http ingress to ringside-bench's app."""

    def setUp(self):
        super().setUp()
        self.log = os.path.join(self.workdir, "access.log")
        self.app = self.start_http_app()
        self.ingress, self.port = self.http_ingress(self.app, extra=["--access-log", self.log])

    def url(self, path="/"):
        return f"https://{SERVICE}:{self.port}{path}"

    def test_curl_http2_gets_http2(self):
        status, body, tail, err = self.curl(self.url("/hello"), "--http2")
        self.assertEqual(status, 0, err + self.diag())
        self.assertEqual(tail, "2 200", body)
        self.assertEqual(body, b"Hello, world\n")
        def logged():
            if not os.path.exists(self.log):
                return False
            with open(self.log) as f:
                return "HTTP/2" in f.read()
        self.assertTrue(harness.wait_until(logged, timeout=5),
                        "the access log names the protocol HTTP/2\n" + self.diag())
        self.assertGreaterEqual(self.ingress.stat("ringside_listener_http2_cx_total"), 1)

    def test_curl_http11_still_gets_http11(self):
        status, body, tail, err = self.curl(self.url(), "--http1.1")
        self.assertEqual(status, 0, err + self.diag())
        self.assertEqual(tail, "1.1 200")

    def test_h2load_many_streams_few_upstream_connections(self):
        h2load = harness.require_tool("h2load")
        done = subprocess.run([h2load, "-n", "400", "-c", "2", "-m", "20", "--connect-to",
                               f"{LOOPBACK}:{self.port}", self.url()],
                              capture_output=True, timeout=60)
        out = done.stdout.decode()
        self.assertEqual(done.returncode, 0, out + done.stderr.decode())
        self.assertIn("Application protocol: h2", out)
        self.assertIn("400 succeeded, 0 failed", out)
        self.assertIn("status codes: 400 2xx", out)
        # Streams borrow pooled HTTP/1.1 connections: at most one per stream in flight.
        opened = self.ingress.stat("ringside_http_listener_upstream_cx_total")
        self.assertLessEqual(opened, 40, self.diag())
        self.assertTrue(harness.wait_until(
            lambda: self.ingress.stat("ringside_listener_http2_streams_active") == 0, 5))

    def test_nghttp_post_body(self):
        nghttp = harness.require_tool("nghttp")
        data = os.path.join(self.workdir, "upload")
        with open(data, "wb") as f:
            f.write(os.urandom(300 * 1024))
        done = subprocess.run([nghttp, "-s", "-d", data, self.url("/upload").replace(
            SERVICE, f"{LOOPBACK}")], capture_output=True, timeout=30)
        # nghttp verifies nothing about names; the point is a body crossing the windows.
        self.assertEqual(done.returncode, 0, done.stderr.decode() + self.diag())
        self.assertIn(b"200", done.stdout + done.stderr)

    def test_preface_without_alpn_is_http2(self):
        c = self.client(self.port, alpn=None)
        self.assertIsNone(c.alpn)
        sid = c.request("/")
        status, _, body, _, _ = c.response(sid)
        self.assertEqual(status, 200, self.diag())
        self.assertEqual(body, b"Hello, world\n")


class TranslationTest(Http2Case):
    """What the HTTP/1.1 app receives for an HTTP/2 request, and what the client gets back
    (RFC 9113 section 8)."""

    def setUp(self):
        super().setUp()
        self.up = self.upstream(su.serve())  # echo: a JSON description of the request
        _, self.port = self.http_ingress(self.up.port)

    def echoed(self, sid, c):
        status, headers, body, _, reset = c.response(sid)
        self.assertIsNone(reset, self.diag())
        self.assertEqual(status, 200, body)
        return json.loads(body), headers

    def test_head_translated(self):
        c = self.client(self.port)
        sid = c.request("/a/b?c=1", headers=[("cookie", "a=1"), ("x-one", "1"),
                                             ("cookie", "b=2"), ("te", "trailers")],
                        authority="orders.example:8443")
        seen, headers = self.echoed(sid, c)
        self.assertEqual(seen["method"], "GET")
        self.assertEqual(seen["target"], "/a/b?c=1")
        self.assertEqual(seen["version"], "HTTP/1.1")
        fields = {}
        for name, value in seen["headers"]:
            fields.setdefault(name.lower(), []).append(value)
        self.assertEqual(fields["host"], ["orders.example:8443"])
        self.assertEqual(fields["cookie"], ["a=1; b=2"])
        self.assertEqual(fields["x-one"], ["1"])
        self.assertNotIn("te", fields)
        self.assertEqual(fields["x-forwarded-proto"], ["https"])
        self.assertIn("x-request-id", fields)
        self.assertEqual(headers["server"], "ringside")
        self.assertIn("x-upstream-service-time", headers)
        self.assertNotIn("connection", headers)

    def test_body_without_length_goes_chunked(self):
        c = self.client(self.port)
        body = os.urandom(200 * 1024)
        sid = c.request("/up", method="POST", body=body)
        seen, _ = self.echoed(sid, c)
        self.assertTrue(seen["chunked"])
        self.assertEqual(seen["body_length"], len(body))
        import hashlib
        self.assertEqual(seen["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_body_with_length_keeps_it(self):
        c = self.client(self.port)
        body = b"x" * 5000
        sid = c.request("/up", method="PUT", body=body,
                        headers=[("content-length", str(len(body)))])
        seen, _ = self.echoed(sid, c)
        self.assertFalse(seen["chunked"])
        self.assertEqual(seen["body_length"], 5000)
        self.assertIn(["Content-Length", "5000"], seen["headers"])

    def test_request_trailers_reach_the_app(self):
        c = self.client(self.port)
        sid = c.request("/t", method="POST", body=b"abc", end=False)
        c.conn.send_headers(sid, [("x-checksum", "42")], end_stream=True)
        c.flush()
        c.response(sid)
        request = self.up.requests()[-1]
        self.assertTrue(request.chunked)
        self.assertEqual(request.body, b"abc")
        self.assertIn(("x-checksum", "42"), [(n.lower(), v) for n, v in request.trailers])

    def test_many_streams_at_once(self):
        c = self.client(self.port)
        sids = [c.request(f"/s{i}") for i in range(30)]
        for i, sid in enumerate(sids):
            seen, _ = self.echoed(sid, c)
            self.assertEqual(seen["target"], f"/s{i}")


class ResponseTest(Http2Case):
    def test_chunked_response_trailers_become_trailing_headers(self):
        raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n"
               b"5\r\nhello\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n")
        up = self.upstream(su.serve(su.fixed(raw)))
        _, port = self.http_ingress(up.port)
        c = self.client(port)
        status, headers, body, trailers, reset = c.response(c.request("/"))
        self.assertEqual((status, body, reset), (200, b"hello", None), self.diag())
        self.assertEqual(trailers.get("grpc-status"), "0")
        self.assertEqual(trailers.get("grpc-message"), "ok")
        self.assertNotIn("transfer-encoding", headers)
        self.assertNotIn("content-length", headers)

    def test_head_and_204(self):
        up = self.upstream(su.serve(su.by_path({"/none": su.status(204)},
                                               default=su.status(200, b"body!"))))
        _, port = self.http_ingress(up.port)
        c = self.client(port)
        status, headers, body, _, _ = c.response(c.request("/x", method="HEAD"))
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(headers.get("content-length"), "5")
        status, _, body, _, _ = c.response(c.request("/none"))
        self.assertEqual((status, body), (204, b""))

    def test_large_response_small_client_window(self):
        payload = os.urandom(1024 * 1024)
        up = self.upstream(su.serve(su.chunked_body(payload)))
        _, port = self.http_ingress(up.port)
        c = self.client(port, window=16384)
        status, _, body, _, reset = c.response(c.request("/big"), timeout=30)
        self.assertEqual((status, reset), (200, None), self.diag())
        self.assertEqual(body, payload)

    def test_100_continue_reaches_the_client(self):
        up = self.upstream(su.serve(su.echo(), on_head=su.send_continue))
        _, port = self.http_ingress(up.port)
        c = self.client(port)
        sid = c.request("/c", method="POST", end=False, headers=[("expect", "100-continue")])
        self.assertTrue(c.wait(lambda: any(isinstance(e, h2.events.InformationalResponseReceived)
                                           for e in c.events)), self.diag())
        c.send_body(sid, b"payload")
        status, _, _, _, _ = c.response(sid)
        self.assertEqual(status, 200)


class UpstreamFailureTest(Http2Case):
    def test_dead_upstream_gets_503_on_the_stream(self):
        _, port = self.http_ingress(harness.free_port())
        c = self.client(port)
        status, headers, body, _, _ = c.response(c.request("/"))
        self.assertEqual(status, 503, body)
        self.assertEqual(headers.get("content-type"), "text/plain")
        # The connection stays usable.
        status, _, _, _, _ = c.response(c.request("/again"))
        self.assertEqual(status, 503)
        self.assertIsNone(c.goaway())

    def test_503_is_retried_per_stream(self):
        up = self.upstream(su.serve(su.FailFirst(1, then=su.status(200, b"second try"))))
        _, port = self.http_ingress(up.port)
        c = self.client(port)
        status, _, body, _, _ = c.response(c.request("/"))
        self.assertEqual((status, body), (200, b"second try"), self.diag())

    def test_upstream_reset_mid_body_resets_only_that_stream(self):
        def half_then_reset(request, conn):
            if request.target == "/cut":
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part")
                time.sleep(0.2)
                conn.reset()
                return None
            return su.response(200, b"fine")
        up = self.upstream(su.serve(half_then_reset))
        _, port = self.http_ingress(up.port)
        c = self.client(port)
        cut = c.request("/cut")
        status, _, body, _, reset = c.response(cut)
        self.assertEqual(status, 200)
        self.assertIsNotNone(reset, "a truncated response must end in RST_STREAM")
        status, _, body, _, reset = c.response(c.request("/ok"))
        self.assertEqual((status, body, reset), (200, b"fine", None))

    def test_stream_idle_timeout_resets_only_that_stream(self):
        up = self.upstream(su.serve(su.by_path({"/hang": su.never},
                                               default=su.status(200, b"alive"))))
        proc, port = self.http_ingress(up.port, extra=["--http-idle-timeout", "1s"])
        c = self.client(port)
        hang = c.request("/hang")
        # Another stream keeps the connection busy meanwhile; the idle stream still ends.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            status, _, body, _, _ = c.response(c.request("/ping"))
            self.assertEqual((status, body), (200, b"alive"))
            time.sleep(0.2)
        _, _, _, _, reset = c.response(hang, timeout=3)
        self.assertEqual(reset, 8, self.diag())  # CANCEL
        self.assertIsNone(c.goaway())

    def test_request_timeout_504_per_stream(self):
        up = self.upstream(su.serve(su.by_path({"/slow": su.delayed(3000, su.status(200))},
                                               default=su.status(200, b"quick"))))
        _, port = self.http_ingress(up.port, extra=["--request-timeout", "500ms"])
        c = self.client(port)
        slow = c.request("/slow")
        quick = c.request("/quick")
        status, _, body, _, _ = c.response(quick)
        self.assertEqual((status, body), (200, b"quick"))
        status, _, _, _, _ = c.response(slow, timeout=5)
        self.assertEqual(status, 504, self.diag())

    def test_request_timeout_after_the_response_started_resets_the_stream(self):
        def head_then_stall(request, conn):
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            su.never(request, conn)
        up = self.upstream(su.serve(su.by_path({"/stall": head_then_stall},
                                               default=su.status(200, b"quick"))))
        proc, port = self.http_ingress(up.port, extra=["--request-timeout", "1s"])
        c = self.client(port)
        stalled = c.request("/stall")
        status, _, body, _, reset = c.response(stalled, timeout=6)
        # The head and the 10 bytes came; then the stream is reset, alone.
        self.assertEqual((status, body, reset), (200, b"x" * 10, 2), self.diag())  # INTERNAL
        status, _, body, _, _ = c.response(c.request("/quick"))
        self.assertEqual((status, body), (200, b"quick"))
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_http_listener_request_timeouts_total") == 1, timeout=5),
            self.diag())
        self.assertTrue(harness.wait_until(lambda: up.connections[0].peer_closed, timeout=5))


class ClientBehaviourTest(Http2Case):
    def test_client_reset_cancels_the_upstream_request(self):
        up = self.upstream(su.serve(su.never))
        proc, port = self.http_ingress(up.port)
        c = self.client(port)
        sid = c.request("/hang")
        self.assertTrue(harness.wait_until(lambda: up.request_count() == 1, timeout=5))
        c.conn.reset_stream(sid, error_code=8)  # CANCEL
        c.flush()
        # The upstream connection serving it is closed at once (its answer is unwanted).
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_http_listener_upstream_cx_active") == 0, timeout=5),
            self.diag())
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_http_listener_request_active") == 0, timeout=5))

    def test_connection_close_mid_stream_leaks_nothing(self):
        up = self.upstream(su.serve(su.never))
        proc, port = self.http_ingress(up.port)
        for _ in range(5):
            c = H2Client(port, ca=self.ca)
            c.request("/hang")
            time.sleep(0.05)
            c.close()
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_listener_http2_cx_active") == 0
            and proc.stat("ringside_http_listener_upstream_cx_active") == 0, timeout=5),
            self.diag())


class MalformedTest(Http2Case):
    """RFC 9113 8.1.1 and 8.2: a malformed request is a stream error; nothing reaches the
    app, and the connection goes on."""

    def setUp(self):
        super().setUp()
        self.up = self.upstream(su.serve())
        self.proc, self.port = self.http_ingress(self.up.port)

    def refused(self, headers, body=None, extra=()):
        c = self.client(self.port, validate=False)
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            c.conn.send_data(sid, body, end_stream=True)
        c.flush()
        status, _, _, _, reset = c.response(sid)
        # And the connection still serves a good request.
        ok = c.request("/fine")
        good, _, _, _, _ = c.response(ok)
        self.assertEqual(good, 200)
        return status, reset

    def base(self, path="/"):
        return [(":method", "GET"), (":scheme", "https"), (":authority", SERVICE),
                (":path", path)]

    def test_uppercase_name(self):
        status, reset = self.refused(self.base() + [("X-Upper", "1")])
        self.assertEqual((status, reset), (None, 1))
        self.assertEqual(self.up.request_count(), 1)  # only /fine

    def test_connection_specific_field(self):
        status, reset = self.refused(self.base() + [("connection", "keep-alive")])
        self.assertEqual((status, reset), (None, 1))
        self.assertEqual(self.up.request_count(), 1)

    def test_content_length_disagrees_with_data(self):
        headers = [(":method", "POST"), (":scheme", "https"), (":authority", SERVICE),
                   (":path", "/p"), ("content-length", "10")]
        status, reset = self.refused(headers, body=b"abc")
        self.assertEqual(reset, 1)

    def test_missing_path(self):
        status, reset = self.refused([(":method", "GET"), (":scheme", "https"),
                                      (":authority", SERVICE)])
        self.assertEqual(reset, 1)

    def test_host_differs_from_authority(self):
        # RFC 9113 8.3.1: malformed (the codec resets it before the exchange layer, whose
        # own check answers 400 should a head ever get through).
        status, reset = self.refused(self.base() + [("host", "evil.example")])
        self.assertEqual((status, reset), (None, 1))
        self.assertEqual(self.up.request_count(), 1)

    def test_connect_is_refused(self):
        status, reset = self.refused([(":method", "CONNECT"), (":authority", "db:5432")])
        self.assertEqual(status, 501)
        self.assertEqual(self.up.request_count(), 1)


class AbuseTest(Http2Case):
    def test_rapid_reset_ends_in_goaway_others_served(self):
        up = self.upstream(su.serve(su.delayed(50, su.status(200, b"ok"))))
        proc, port = self.http_ingress(up.port)
        bystander = self.client(port)
        c = self.client(port)
        for _ in range(1200):
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                                      (":authority", SERVICE), (":path", "/")])
            c.conn.reset_stream(sid, error_code=8)
            if sid % 100 == 1:
                try:
                    c.flush()
                except OSError:
                    break
        try:
            c.flush()
        except OSError:
            pass
        c.wait(lambda: c.goaway() is not None, timeout=10)
        self.assertIsNotNone(c.goaway(), self.diag())
        # nghttp2's Rapid Reset limiter answers INTERNAL_ERROR (docs/http2.md, the table).
        self.assertEqual(c.goaway().error_code, 2)
        status, _, body, _, _ = bystander.response(bystander.request("/"))
        self.assertEqual((status, body), (200, b"ok"))
        self.assertGreaterEqual(proc.stat("ringside_listener_http2_abuse_closed_total"), 1)

    def test_ping_flood_is_bounded(self):
        _, port = self.http_ingress(self.upstream(su.serve()).port)
        c = self.client(port)
        c.auto_window = True
        payload = b"".join(b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"
                           for _ in range(5000))
        try:
            c.sock.sendall(payload)  # PINGs, never reading the acknowledgements
        except OSError:
            pass
        # The proxy stays up and serves another connection.
        other = self.client(port)
        status, _, _, _, _ = other.response(other.request("/"))
        self.assertEqual(status, 200)


class DrainTest(Http2Case):
    def test_drain_sends_goaway_and_finishes_streams(self):
        """nghttp (python3-h2 takes any GOAWAY as the end of the connection, so it cannot
        see the stream finish after the first, graceful one)."""
        nghttp = harness.require_tool("nghttp")
        up = self.upstream(su.serve(su.delayed(1500, su.status(200, b"done"))))
        proc, port = self.http_ingress(up.port, extra=["--drain-timeout", "10s"])
        client = subprocess.Popen([nghttp, "-v", f"https://{LOOPBACK}:{port}/inflight"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(client.kill)
        self.assertTrue(harness.wait_until(lambda: up.request_count() == 1, timeout=5),
                        self.diag())
        proc.admin_request("POST", "/drain")
        out, _ = client.communicate(timeout=20)
        text = out.decode(errors="replace")
        self.assertEqual(client.returncode, 0, text + self.diag())
        self.assertIn("recv GOAWAY frame", text)
        self.assertIn("last_stream_id=2147483647", text)  # the first, graceful GOAWAY
        self.assertIn(":status: 200", text)
        self.assertIn("done", text)


class EgressH2cTest(Http2Case):
    def test_h2c_prior_knowledge_through_the_chain(self):
        app = self.start_http_app()
        _, ingress_port = self.http_ingress(app)
        _, egress_port = self.start_egress([ingress_port], self.ca, options="protocol=http")
        status, body, tail, err = self.curl(f"http://{LOOPBACK}:{egress_port}/x",
                                            "--http2-prior-knowledge", tls=False)
        self.assertEqual(status, 0, err + self.diag())
        self.assertEqual(tail, "2 200")
        self.assertEqual(body, b"Hello, world\n")

    def test_http11_on_the_same_egress(self):
        app = self.start_http_app()
        _, ingress_port = self.http_ingress(app)
        _, egress_port = self.start_egress([ingress_port], self.ca, options="protocol=http")
        status, body, tail, err = self.curl(f"http://{LOOPBACK}:{egress_port}/x", tls=False)
        self.assertEqual((status, tail), (0, "1.1 200"), err)


class AppH2cTest(Http2Case):
    """protocol=http2|grpc ingress: the app speaks h2c; streams of any client share pooled
    HTTP/2 connections to it, one stream per request (the HTTP/2 client codec)."""

    def ingress_to(self, app, protocol="http2", extra=(), **kwargs):
        return self.start_ingress(app.port, self.cert, self.key, options=f"protocol={protocol}",
                                  extra=list(extra), **kwargs)

    def test_curl_http2_and_http11_reach_the_h2c_app(self):
        app = self.h2c_app()
        _, port = self.ingress_to(app)
        url = f"https://{SERVICE}:{port}/x"
        status, body, tail, err = self.curl(url, "--http2")
        self.assertEqual((status, tail, body), (0, "2 200", b"h2c app: /x"), err + self.diag())
        status, body, tail, err = self.curl(url, "--http1.1")
        self.assertEqual((status, tail, body), (0, "1.1 200", b"h2c app: /x"), err + self.diag())
        seen = dict(app.requests[-1]["headers"])
        self.assertEqual(seen[":method"], "GET")
        self.assertEqual(seen[":authority"], f"{SERVICE}:{port}")
        self.assertEqual(seen[":scheme"], "http")
        self.assertEqual(seen["x-forwarded-proto"], "https")
        self.assertNotIn("host", seen)

    def test_grpc_style_trailers_and_te_both_ways(self):
        def respond(req):
            return 200, [("content-type", "application/grpc")], b"\x00\x00\x00\x00\x02hi", \
                [("grpc-status", "0"), ("grpc-message", "fine")]
        app = self.h2c_app(respond=respond)
        _, port = self.ingress_to(app, protocol="grpc")
        c = self.client(port)
        sid = c.request("/pkg.Svc/Call", method="POST", body=b"\x00\x00\x00\x00\x00",
                        headers=[("content-type", "application/grpc"), ("te", "trailers")])
        status, headers, body, trailers, reset = c.response(sid)
        self.assertEqual((status, reset), (200, None), self.diag())
        self.assertEqual(body, b"\x00\x00\x00\x00\x02hi")
        self.assertEqual(trailers, {"grpc-status": "0", "grpc-message": "fine"})
        seen = dict(app.requests[-1]["headers"])
        self.assertEqual(seen.get("te"), "trailers")
        self.assertEqual(app.requests[-1]["body"], b"\x00\x00\x00\x00\x00")

    def test_streams_of_one_client_share_one_upstream_connection(self):
        app = self.h2c_app(delay=0.2)
        _, port = self.ingress_to(app)
        c = self.client(port)
        sids = [c.request(f"/s{i}") for i in range(20)]
        for i, sid in enumerate(sids):
            status, _, body, _, _ = c.response(sid)
            self.assertEqual((status, body), (200, f"h2c app: /s{i}".encode()))
        self.assertEqual(app.connections, 1)
        self.assertGreater(app.peak_streams, 1)

    def test_http11_clients_share_it_too(self):
        app = self.h2c_app(delay=0.2)
        proc, port = self.ingress_to(app, threads=1)
        results = []

        def one(i):
            results.append(self.curl(f"https://{SERVICE}:{port}/c{i}", "--http1.1"))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([r[2] for r in results], ["1.1 200"] * 8, results)
        self.assertEqual(app.connections, 1, self.diag())

    def test_peer_stream_limit_opens_another_connection(self):
        app = self.h2c_app(max_streams=2, delay=0.3)
        _, port = self.ingress_to(app)
        c = self.client(port)
        sids = [c.request(f"/m{i}") for i in range(6)]
        for sid in sids:
            status, _, _, _, reset = c.response(sid)
            self.assertEqual((status, reset), (200, None), self.diag())
        self.assertLessEqual(app.peak_streams, 2)
        self.assertGreaterEqual(app.connections, 2)

    def test_refused_stream_is_sent_again(self):
        app = self.h2c_app(refuse_first=1)
        _, port = self.ingress_to(app)
        c = self.client(port)
        sid = c.request("/r", method="POST", body=b"payload",
                        headers=[("content-length", "7")])
        status, _, body, _, _ = c.response(sid)
        self.assertEqual((status, body), (200, b"h2c app: /r"), self.diag())
        self.assertEqual(len(app.requests), 1)
        self.assertEqual(app.requests[0]["body"], b"payload")
        # (The upstream reset counter is asserted in h2_worker_test, where the order of
        # the app's RST_STREAM and its close is not up to the python3-h2 app.)

    def test_goaway_from_the_app_moves_to_a_new_connection(self):
        app = self.h2c_app(goaway_after=1)
        proc, port = self.ingress_to(app)
        c = self.client(port)
        for i in range(3):
            status, _, _, _, _ = c.response(c.request(f"/g{i}"))
            self.assertEqual(status, 200, self.diag())
        self.assertGreaterEqual(app.connections, 2)
        self.assertGreaterEqual(proc.stat("ringside_listener_http2_upstream_goaways_received_total"),
                                1)

    def test_client_cancel_resets_the_upstream_stream(self):
        app = self.h2c_app(delay=3)
        proc, port = self.ingress_to(app)
        c = self.client(port)
        sid = c.request("/slow")
        self.assertTrue(harness.wait_until(lambda: app.peak_streams >= 1, timeout=5))
        c.conn.reset_stream(sid, error_code=8)
        c.flush()
        self.assertTrue(harness.wait_until(lambda: app.resets, timeout=5), self.diag())
        self.assertEqual(app.resets[0][1], 8)  # CANCEL
        self.assertTrue(harness.wait_until(lambda: proc.stat(
            "ringside_listener_http2_upstream_resets_sent_total") >= 1, timeout=5))
        # The connection to the app stays for the next stream.
        status, _, _, _, _ = c.response(c.request("/next"), timeout=10)
        self.assertEqual(status, 200)
        self.assertEqual(app.connections, 1)

    def test_bodies_both_ways_cross_the_windows(self):
        big = os.urandom(3 * 1024 * 1024)
        app = self.h2c_app(respond=lambda req: (200, [], big, []))
        _, port = self.ingress_to(app)
        c = self.client(port, window=32768)
        upload = os.urandom(1024 * 1024)
        sid = c.request("/both", method="POST", body=upload, end=False)
        c.conn.send_headers(sid, [("x-sum", "1")], end_stream=True)
        c.flush()
        status, _, body, _, reset = c.response(sid, timeout=60)
        self.assertEqual((status, reset), (200, None), self.diag())
        self.assertEqual(body, big)
        self.assertEqual(app.requests[-1]["body"], upload)
        self.assertEqual(dict(app.requests[-1]["trailers"]).get("x-sum"), "1")

    def test_app_down_is_a_fast_503(self):
        app = self.h2c_app()
        app.close()
        _, port = self.ingress_to(app)
        status, body, tail, err = self.curl(f"https://{SERVICE}:{port}/", "--http2")
        self.assertEqual(tail, "2 503", body)


class SidecarChainTest(Http2Case):
    """app -> egress -> ingress -> app with HTTP/1.1 apps: the sidecars speak h2 between
    them (ALPN), one TLS connection per endpoint and worker, requests multiplexed."""

    def test_one_connection_between_the_sidecars(self):
        app = self.start_http_app()
        ingress, ingress_port = self.http_ingress(app, threads=1)
        egress, egress_port = self.start_egress([ingress_port], self.ca, options="protocol=http",
                                                threads=1)
        results = []

        def client(i):
            for j in range(5):
                results.append(self.curl(f"http://{LOOPBACK}:{egress_port}/{i}/{j}", tls=False))
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted({r[2] for r in results}), ["1.1 200"], results)
        self.assertEqual(len(results), 40)
        self.assertEqual(egress.stat("ringside_http_listener_upstream_cx_total"), 1, self.diag())
        self.assertEqual(ingress.stat("ringside_listener_http2_cx_total"), 1)
        self.assertEqual(ingress.stat("ringside_listener_cx_total"), 1)

    def test_h2_off_keeps_http11_between_the_sidecars(self):
        app = self.start_http_app()
        ingress, ingress_port = self.http_ingress(app, threads=1)
        egress, egress_port = self.start_egress([ingress_port], self.ca,
                                                options="protocol=http,h2=off", threads=1)
        for i in range(3):
            status, body, tail, err = self.curl(f"http://{LOOPBACK}:{egress_port}/{i}", tls=False)
            self.assertEqual(tail, "1.1 200", err)
        self.assertEqual(ingress.stat("ringside_listener_http2_cx_total"), 0)
        self.assertEqual(ingress.stat("ringside_http_listener_requests_total"), 3)

    def test_requests_balance_over_endpoints_per_request(self):
        app = self.start_http_app()
        first, port1 = self.http_ingress(app, name="ingress-1")
        second, port2 = self.http_ingress(app, name="ingress-2")
        _, egress_port = self.start_egress([port1, port2], self.ca, options="protocol=http",
                                           threads=1)
        for i in range(10):  # one client connection, ten requests
            status, _, tail, err = self.curl(f"http://{LOOPBACK}:{egress_port}/{i}", tls=False)
            self.assertEqual(tail, "1.1 200", err)
        a = first.stat("ringside_http_listener_requests_total")
        b = second.stat("ringside_http_listener_requests_total")
        self.assertEqual(a + b, 10)
        self.assertGreaterEqual(min(a, b), 4, (a, b))

    def test_h2c_client_gets_the_app_trailers_through_both_sidecars(self):
        def respond(req):
            return 200, [("content-type", "application/grpc")], b"\x00\x00\x00\x00\x01!", \
                [("grpc-status", "7"), ("grpc-message", "denied")]
        app = self.h2c_app(respond=respond)
        _, ingress_port = self.start_ingress(app.port, self.cert, self.key, options="protocol=grpc")
        _, egress_port = self.start_egress([ingress_port], self.ca, options="protocol=grpc")
        c = self.client(egress_port, tls=False)
        sid = c.request("/pkg.Svc/Deny", method="POST", body=b"\x00\x00\x00\x00\x00",
                        headers=[("content-type", "application/grpc"), ("te", "trailers")])
        status, _, body, trailers, reset = c.response(sid)
        self.assertEqual((status, reset), (200, None), self.diag())
        self.assertEqual(trailers, {"grpc-status": "7", "grpc-message": "denied"})
        self.assertEqual(dict(app.requests[-1]["headers"]).get("te"), "trailers")

    def test_upgrade_takes_an_http11_connection(self):
        up = self.upstream(su.serve(su.websocket_echo()))
        _, ingress_port = self.http_ingress(up.port)
        egress, egress_port = self.start_egress([ingress_port], self.ca, options="protocol=http")
        with harness.connect(egress_port) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                         b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            sock.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head + self.diag().encode())


_NGINX_H2 = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format proto '$server_protocol $request_uri $status';
    access_log {dir}/access.log proto;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 "nginx over h2\\n"; }}
    }}
}}
"""

_HAPROXY_H2 = """
global
  log stderr format short local0 warning
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen front
  bind 127.0.0.1:{port}
  server ringside 127.0.0.1:{ingress} ssl verify required ca-file {ca} verifyhost {service} sni str({service}) alpn h2
"""


class InteropTest(Http2Case):
    """Real HTTP/2 peers on the other side: nghttpd as an h2c app, nginx as an h2 server
    behind an egress, HAProxy as an h2 client of an ingress."""

    def wait_port(self, proc, port, name):
        def up():
            if proc.poll() is not None:
                return True
            try:
                harness.connect(port, timeout=1).close()
                return True
            except OSError:
                return False
        if not harness.wait_until(up, timeout=10) or proc.poll() is not None:
            self.fail_with_diag(f"{name} did not start")

    def test_nghttpd_as_the_h2c_app(self):
        nghttpd = harness.require_tool("nghttpd")
        docroot = os.path.join(self.workdir, "htdocs")
        os.makedirs(docroot)
        with open(os.path.join(docroot, "file.txt"), "wb") as f:
            f.write(b"served by nghttpd\n" * 1000)
        port = harness.free_port()
        app = self.start("nghttpd", [nghttpd, "--no-tls", "-a", LOOPBACK, "-d", docroot,
                                     str(port)])
        self.wait_port(app, port, "nghttpd")
        _, ingress_port = self.start_ingress(port, self.cert, self.key, options="protocol=http2")
        for option in ("--http2", "--http1.1"):
            status, body, tail, err = self.curl(f"https://{SERVICE}:{ingress_port}/file.txt",
                                                option)
            self.assertEqual(status, 0, err + self.diag())
            self.assertEqual(tail.split()[1], "200")
            self.assertEqual(body, b"served by nghttpd\n" * 1000)
        h2load = harness.require_tool("h2load")
        done = subprocess.run([h2load, "-n", "200", "-c", "4", "-m", "10", "--connect-to",
                               f"{LOOPBACK}:{ingress_port}",
                               f"https://{SERVICE}:{ingress_port}/file.txt"],
                              capture_output=True, timeout=60)
        self.assertIn("200 succeeded, 0 failed", done.stdout.decode(), done.stdout.decode())

    def test_nginx_h2_server_behind_the_egress(self):
        nginx = harness.require_tool("nginx")
        base = os.path.join(self.workdir, "nginx")
        os.makedirs(base)
        port = harness.free_port()
        config = os.path.join(base, "nginx.conf")
        with open(config, "w") as f:
            f.write(_NGINX_H2.format(dir=base, port=port, cert=self.cert, key=self.key))
        proc = self.start("nginx", [nginx, "-c", config, "-p", base])
        self.wait_port(proc, port, "nginx")
        egress, egress_port = self.start_egress([port], self.ca, options="protocol=http")
        for i in range(5):
            status, body, tail, err = self.curl(f"http://{LOOPBACK}:{egress_port}/{i}", tls=False)
            self.assertEqual((status, tail, body), (0, "1.1 200", b"nginx over h2\n"),
                             err + self.diag())
        with open(os.path.join(base, "access.log")) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 5, lines)
        self.assertTrue(all(line.startswith("HTTP/2.0 ") for line in lines), lines)

    def test_haproxy_as_an_h2_client_of_the_ingress(self):
        haproxy = harness.require_tool("haproxy")
        app = self.start_http_app()
        ingress, ingress_port = self.http_ingress(app)
        port = harness.free_port()
        config = os.path.join(self.workdir, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(_HAPROXY_H2.format(port=port, ingress=ingress_port, ca=self.ca,
                                       service=SERVICE))
        proc = self.start("haproxy", [haproxy, "-db", "-f", config])
        self.wait_port(proc, port, "haproxy")
        for i in range(5):
            status, body, tail, err = self.curl(f"http://{LOOPBACK}:{port}/{i}", tls=False)
            self.assertEqual((status, tail, body), (0, "1.1 200", b"Hello, world\n"),
                             err + self.diag())
        self.assertGreaterEqual(ingress.stat("ringside_listener_http2_cx_total"), 1)
        self.assertEqual(ingress.stat("ringside_http_listener_requests_total"), 5)


if __name__ == "__main__":
    harness.main()
