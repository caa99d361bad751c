#!/usr/bin/env python3
"""gRPC through ringside with real grpcio clients and servers (python3-grpcio): the four
call shapes, metadata and trailers both ways, 4 MiB messages, status codes end to end,
the proxy's own failures as Trailers-Only statuses, grpc-timeout deadlines, and
cancellation. The app is a grpcio server on h2c behind an ingress `protocol=grpc`; most
calls go app -> egress (h2c) -> ingress (TLS, h2) -> app, the way Service Connect chains
two sidecars. Methods carry raw bytes (no protobuf): the proxy never looks inside.

Every wait is bounded; each test starts its own processes on loopback ports."""

import json
import os
import subprocess
import threading
import time
import unittest
from concurrent import futures

import harness
from harness import CLIENT_SERVICE, LOOPBACK, SERVICE

try:
    import grpc
except ImportError:  # skips (or fails under CI=true) in setUp
    grpc = None

try:
    from test_http2 import H2Client, H2cApp
except ImportError:  # python3-h2 missing: the raw-frame tests skip
    H2Client = H2cApp = None

MIB = 1024 * 1024
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 8 * MIB),
                   ("grpc.max_send_message_length", 8 * MIB),
                   ("grpc.enable_http_proxy", 0),
                   ("grpc.enable_retries", 0)]


class EchoApp:
    """A grpcio server with the service test.Echo on 127.0.0.1 (h2c):
    Unary echoes the request; metadata ("x-fail", code) aborts with that code; ("x-sleep",
    seconds) waits first; ("x-trailer", value) sets a trailing metadata entry.
    ServerStream answers n (first byte of the request) messages; ClientStream joins what
    it got; Bidi echoes each message. It records the invocation metadata of each call
    (and, as "__time_remaining", the deadline it was given)."""

    def __init__(self, delay=0.0):
        self.delay = delay  # seconds before every unary answer
        # Unary and ServerStream calls pop one (code name, how) each while it is not empty:
        # how is "trailers-only" (abort before any header), "trailers" (headers first),
        # "after-data" (ServerStream: one message, then the status) or a number of seconds
        # to sleep before answering normally.
        self.fail_next = []
        self.calls = []
        self.lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler("test.Echo", {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
        })
        # grpc.health.v1.Health/Check by hand (raw bytes: HealthCheckResponse is field 1,
        # a varint: 1 SERVING, 2 NOT_SERVING); health_checks counts the checks received.
        self.serving = True
        self.health_checks = 0
        health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(self.health_check),
        })
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                                  handlers=[handler, health], options=CHANNEL_OPTIONS)
        self.port = self.server.add_insecure_port(f"{LOOPBACK}:0")
        self.server.start()

    def close(self):
        self.server.stop(0)

    def health_check(self, request, context):
        self.health_checks += 1
        return b"\x08\x01" if self.serving else b"\x08\x02"

    def _record(self, context):
        md = dict(context.invocation_metadata())
        md["__time_remaining"] = context.time_remaining()
        with self.lock:
            self.calls.append(md)
        return md

    def _planned(self):
        with self.lock:
            return self.fail_next.pop(0) if self.fail_next else None

    def unary(self, request, context):
        md = self._record(context)
        if self.delay:
            time.sleep(self.delay)
        plan = self._planned()
        if plan is not None:
            code, how = plan
            if isinstance(how, float):
                time.sleep(how)
            elif how == "trailers-only":
                context.abort(grpc.StatusCode[code], f"planned {code}")
            else:
                context.send_initial_metadata([("x-initial", "hello")])
                context.abort(grpc.StatusCode[code], f"planned {code}")
        if "x-sleep" in md:
            end = time.monotonic() + float(md["x-sleep"])
            while time.monotonic() < end and context.is_active():
                time.sleep(0.02)
            if not context.is_active():
                return b""
        if "x-trailer" in md:
            context.set_trailing_metadata([("x-trailer", md["x-trailer"])])
        context.send_initial_metadata([("x-initial", "hello")])
        if "x-fail" in md:
            context.abort(grpc.StatusCode[md["x-fail"]], f"failed with {md['x-fail']}")
        return request

    def server_stream(self, request, context):
        self._record(context)
        plan = self._planned()
        if plan is not None:
            yield b"first"
            context.abort(grpc.StatusCode[plan[0]], f"planned {plan[0]}")
        for i in range(request[0]):
            yield bytes([i]) * 100

    def client_stream(self, requests, context):
        self._record(context)
        return b"".join(requests)

    def bidi(self, requests, context):
        self._record(context)
        for message in requests:
            yield message


class GrpcCase(harness.PkiCase):
    def setUp(self):
        super().setUp()
        if grpc is None:
            harness.missing_python_package("python3-grpcio")
        self.app = EchoApp()
        self.addCleanup(self.app.close)

    def chain(self, ingress_extra=(), egress_extra=(), app_port=None):
        """app <- ingress (TLS) <- egress (h2c from the client): (ingress, egress, channel)."""
        ingress, ingress_port = self.start_ingress(
            app_port or self.app.port, self.cert, self.key, options="protocol=grpc",
            extra=list(ingress_extra), name="ingress")
        egress, egress_port = self.start_egress([ingress_port], self.ca, options="protocol=grpc",
                                                extra=list(egress_extra))
        channel = grpc.insecure_channel(f"{LOOPBACK}:{egress_port}", options=CHANNEL_OPTIONS)
        self.addCleanup(channel.close)
        return ingress, egress, channel

    def tls_channel(self, port):
        with open(self.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(f"{LOOPBACK}:{port}", creds, options=CHANNEL_OPTIONS + [
            ("grpc.ssl_target_name_override", SERVICE)])
        self.addCleanup(channel.close)
        return channel

    def log_entries(self, path, n, timeout=5):
        def read():
            if not os.path.exists(path):
                return []
            with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]
        harness.wait_until(lambda: len(read()) >= n, timeout=timeout)
        return read()


class CallShapesTest(GrpcCase):
    def test_unary_with_metadata_and_trailers_both_ways(self):
        _, _, channel = self.chain()
        call = channel.unary_unary("/test.Echo/Unary")
        response, info = call.with_call(b"ping", timeout=10,
                                        metadata=[("x-client", "c1"), ("x-trailer", "t1")])
        self.assertEqual(response, b"ping")
        self.assertIn(("x-initial", "hello"), tuple(info.initial_metadata()))
        self.assertIn(("x-trailer", "t1"), tuple(info.trailing_metadata()))
        self.assertEqual(info.code(), grpc.StatusCode.OK)
        self.assertEqual(self.app.calls[-1].get("x-client"), "c1")

    def test_server_client_and_bidi_streaming(self):
        _, _, channel = self.chain()
        replies = list(channel.unary_stream("/test.Echo/ServerStream")(bytes([20]), timeout=10))
        self.assertEqual(replies, [bytes([i]) * 100 for i in range(20)])
        joined = channel.stream_unary("/test.Echo/ClientStream")(
            iter([b"a" * 10, b"b" * 10, b"c" * 10]), timeout=10)
        self.assertEqual(joined, b"a" * 10 + b"b" * 10 + b"c" * 10)
        messages = [bytes([i]) * (i + 1) for i in range(30)]
        echoed = list(channel.stream_stream("/test.Echo/Bidi")(iter(messages), timeout=10))
        self.assertEqual(echoed, messages)

    def test_4mib_messages_both_ways(self):
        _, _, channel = self.chain()
        payload = os.urandom(4 * MIB)
        self.assertEqual(channel.unary_unary("/test.Echo/Unary")(payload, timeout=30), payload)
        messages = [os.urandom(4 * MIB) for _ in range(2)]
        echoed = list(channel.stream_stream("/test.Echo/Bidi")(iter(messages), timeout=30))
        self.assertEqual(echoed, messages)

    def test_tls_client_straight_to_the_ingress(self):
        _, port = self.start_ingress(self.app.port, self.cert, self.key, options="protocol=grpc")
        channel = self.tls_channel(port)
        self.assertEqual(channel.unary_unary("/test.Echo/Unary")(b"direct", timeout=10),
                         b"direct")


class StatusTest(GrpcCase):
    def test_every_status_code_end_to_end(self):
        log = os.path.join(self.workdir, "access.log")
        # (No retries: every call reaches the app once, UNAVAILABLE too.)
        _, _, channel = self.chain(ingress_extra=["--access-log", log, "--access-log-format",
                                                  "json", "--grpc-retry-on", "none"],
                                   egress_extra=["--grpc-retry-on", "none"])
        call = channel.unary_unary("/test.Echo/Unary")
        codes = [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK]
        for code in codes:
            with self.assertRaises(grpc.RpcError) as caught:
                call(b"x", timeout=10, metadata=[("x-fail", code.name)])
            self.assertEqual(caught.exception.code(), code, caught.exception)
            self.assertEqual(caught.exception.details(), f"failed with {code.name}")
        # The ingress logs each call's grpc-status (HTTP 200 every time).
        entries = self.log_entries(log, len(codes))
        self.assertEqual(sorted(e["grpc_status"] for e in entries),
                         sorted(c.value[0] for c in codes), entries)
        self.assertEqual({e["response_code"] for e in entries}, {200})

    def test_no_upstream_is_unavailable_as_trailers_only(self):
        # The ingress's app is not listening: the egress gets the ingress's reply.
        dead = harness.free_port()
        log = os.path.join(self.workdir, "access.log")
        ingress, _, channel = self.chain(ingress_extra=["--access-log", log,
                                                        "--access-log-format", "json"],
                                         egress_extra=["--grpc-retry-on", "none"],
                                         app_port=dead)
        with self.assertRaises(grpc.RpcError) as caught:
            channel.unary_unary("/test.Echo/Unary")(b"x", timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE, caught.exception)
        self.assertEqual(caught.exception.details(), "upstream connect failure")
        (entry,) = self.log_entries(log, 1)
        self.assertEqual((entry["response_code"], entry["grpc_status"], entry["details"]),
                         (200, 14, "upstream connect failure"), entry)
        self.assertIn("UF", entry["response_flags"])
        # Still counted as the proxy's own failure.
        self.assertEqual(ingress.stat("ringside_http_listener_http_code_proxy_5xx_total"), 1,
                         self.diag())

    def test_trailers_only_on_the_wire(self):
        if H2Client is None:
            harness.missing_python_package("python3-h2")
        _, port = self.start_ingress(harness.free_port(), self.cert, self.key,
                                     options="protocol=grpc")
        c = H2Client(port, ca=self.ca)
        self.addCleanup(c.close)
        sid = c.request("/test.Echo/Unary", method="POST", body=b"\0\0\0\0\0",
                        headers=[("content-type", "application/grpc"), ("te", "trailers")])
        status, headers, body, trailers, reset = c.response(sid)
        # One HEADERS frame with END_STREAM: the status in it, no DATA, no trailers.
        self.assertEqual((status, body, trailers, reset), (200, b"", {}, None), headers)
        self.assertEqual(headers.get("content-type"), "application/grpc")
        self.assertEqual(headers.get("grpc-status"), "14")
        self.assertEqual(headers.get("grpc-message"), "upstream connect failure")


class DeadlineTest(GrpcCase):
    def test_grpc_timeout_reaches_the_app_through_both_sidecars(self):
        _, _, channel = self.chain()
        channel.unary_unary("/test.Echo/Unary")(b"x", timeout=5)
        remaining = self.app.calls[-1]["__time_remaining"]
        self.assertIsNotNone(remaining)
        # Each hop forwards what is left of the deadline by its own clock, read when the
        # request arrived: the time a request spends on the wire between two hops is not
        # counted (as in gRPC itself), so the app may see a few ms more than the client
        # had left. That the proxy subtracts its own time is shown by the retry test below.
        self.assertLess(remaining, 5.1)
        self.assertGreater(remaining, 3.0)

    def test_a_retry_carries_what_is_left_of_the_deadline(self):
        # The grpc-timeout sent upstream is the call's deadline less the time spent: the
        # retry after a 300 ms per-try timeout carries 300 ms less than the first attempt.
        if H2Client is None:
            harness.missing_python_package("python3-h2")
        # Requests: 0 opens the upstream connection, 1 is too slow, 2 is its retry.
        app = H2cApp(delay=lambda index: 3.0 if index == 1 else 0.0,
                     respond=lambda req: (200, [("content-type", "application/grpc")],
                                          b"\0\0\0\0\x01y", [("grpc-status", "0")]))
        self.addCleanup(app.close)
        _, port = self.start_ingress(app.port, self.cert, self.key, options="protocol=grpc",
                                     extra=["--grpc-per-try-timeout", "300ms"])
        c = H2Client(port, ca=self.ca)
        self.addCleanup(c.close)
        grpc_headers = [("content-type", "application/grpc"), ("te", "trailers"),
                        ("grpc-timeout", "5S")]
        for _ in range(2):
            sid = c.request("/test.Echo/Unary", method="POST", body=b"\0\0\0\0\x01x",
                            headers=grpc_headers)
            status, headers, body, trailers, reset = c.response(sid, timeout=5)
            self.assertEqual((status, trailers.get("grpc-status")), (200, "0"),
                             (headers, trailers, reset, self.diag()))
        self.assertEqual(len(app.received), 3, app.received)

        def timeout_ms(fields):
            (value,) = [v for k, v in fields if k == "grpc-timeout"]
            self.assertEqual(value[-1], "m", fields)
            return int(value[:-1])

        first, retry = timeout_ms(app.received[1]), timeout_ms(app.received[2])
        self.assertLessEqual(first, 5000)
        self.assertGreater(first, 4000)
        # The per-try timer starts in the loop turn that sends the attempt (its connection
        # is open) and never fires early: the retry leaves at least 300 ms later.
        self.assertLessEqual(retry, first - 300, (first, retry))

    def test_the_proxy_enforces_grpc_timeout(self):
        # A client and an app that both ignore grpc-timeout (hand-made frames, python3-h2):
        # the proxy answers DEADLINE_EXCEEDED at the deadline and cancels the app's call.
        if H2Client is None:
            harness.missing_python_package("python3-h2")
        app = H2cApp(delay=3.0)
        self.addCleanup(app.close)
        log = os.path.join(self.workdir, "access.log")
        _, port = self.start_ingress(app.port, self.cert, self.key, options="protocol=grpc",
                                     extra=["--access-log", log, "--access-log-format", "json"])
        c = H2Client(port, ca=self.ca)
        self.addCleanup(c.close)
        started = time.monotonic()
        sid = c.request("/test.Echo/Unary", method="POST", body=b"\0\0\0\0\x01x",
                        headers=[("content-type", "application/grpc"), ("te", "trailers"),
                                 ("grpc-timeout", "500m"), ("x-sleep", "5")])
        status, headers, body, trailers, reset = c.response(sid, timeout=5)
        elapsed = time.monotonic() - started
        self.assertEqual((status, headers.get("grpc-status")), (200, "4"), (headers, trailers))
        self.assertLess(elapsed, 2.5)
        # The app's stream is cancelled (RST_STREAM CANCEL).
        self.assertTrue(harness.wait_until(lambda: (1, 8) in app.resets, timeout=5),
                        f"{app.resets}\n{self.diag()}")
        (entry,) = self.log_entries(log, 1)
        self.assertEqual((entry["grpc_status"], entry["response_code"]), (4, 200), entry)
        self.assertIn("UT", entry["response_flags"])

    def test_request_timeout_is_the_bound_when_smaller(self):
        _, _, channel = self.chain(ingress_extra=["--request-timeout", "500ms"])
        started = time.monotonic()
        with self.assertRaises(grpc.RpcError) as caught:
            channel.unary_unary("/test.Echo/Unary")(b"x", timeout=8, metadata=[("x-sleep", "5")])
        self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(time.monotonic() - started, 4.0)

    def test_deadline_after_the_response_started_ends_with_trailers(self):
        # A server stream that outlives the deadline: the messages already sent arrive,
        # then DEADLINE_EXCEEDED in trailers.
        if H2Client is None:
            harness.missing_python_package("python3-h2")
        ingress, port = self.start_ingress(self.app.port, self.cert, self.key,
                                           options="protocol=grpc")
        c = H2Client(port, ca=self.ca)
        self.addCleanup(c.close)
        # Bidi with the request left open: the first message is echoed, then nothing.
        sid = c.request("/test.Echo/Bidi", method="POST", body=b"\0\0\0\0\x02hi", end=False,
                        headers=[("content-type", "application/grpc"), ("te", "trailers"),
                                 ("grpc-timeout", "800m")])
        status, headers, body, trailers, reset = c.response(sid, timeout=6)
        self.assertEqual((status, body), (200, b"\0\0\0\0\x02hi"), (headers, trailers, reset))
        self.assertEqual(trailers.get("grpc-status"), "4", (headers, trailers, reset))
        # The app's stream is cancelled. (Counted by the proxy: the app, given the reduced
        # grpc-timeout, may end the call by its own deadline at the same moment.)
        self.assertTrue(harness.wait_until(
            lambda: ingress.stat("ringside_listener_http2_upstream_resets_sent_total") == 1,
            timeout=5), self.diag())


class BalancingTest(GrpcCase):
    """One grpcio channel (one HTTP/2 connection to the egress) whose calls are balanced
    per call over two replicas, each behind its own ingress."""

    def replicas(self, delays, extra=()):
        apps = []
        ports = []
        for i, delay in enumerate(delays):
            app = EchoApp(delay=delay)
            self.addCleanup(app.close)
            _, port = self.start_ingress(app.port, self.cert, self.key, options="protocol=grpc",
                                         name=f"ingress-{i}")
            apps.append(app)
            ports.append(port)
        egress, egress_port = self.start_egress(ports, self.ca, options="protocol=grpc",
                                                extra=list(extra))
        channel = grpc.insecure_channel(f"{LOOPBACK}:{egress_port}", options=CHANNEL_OPTIONS)
        self.addCleanup(channel.close)
        return egress, channel, apps

    def calls(self, channel, n, concurrency=8):
        call = channel.unary_unary("/test.Echo/Unary")
        with futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(lambda i: call(b"x%d" % i, timeout=20), range(n)))
        self.assertEqual(len(results), n)

    def test_calls_of_one_channel_spread_over_the_replicas(self):
        egress, channel, apps = self.replicas([0.002, 0.002])
        self.calls(channel, 400)
        shares = [len(app.calls) / 400 for app in apps]
        for share in shares:
            self.assertGreaterEqual(share, 0.3, shares)
            self.assertLessEqual(share, 0.7, shares)
        self.assertEqual(egress.stat("ringside_http_listener_upstream_cx_total"), 2, self.diag())
        status, body = egress.admin_request("GET", "/clusters")
        self.assertEqual(status, 200)
        document = json.loads(body)
        clusters = document["clusters"] if isinstance(document, dict) else document
        (service,) = [c for c in clusters if c["name"] == SERVICE]
        self.assertEqual(service["lb_policy"], "p2c-ewma")  # the default for grpc

    def test_a_slow_replica_loses_its_share_under_p2c_ewma(self):
        egress, channel, apps = self.replicas([0.005, 0.050])
        self.calls(channel, 20)  # the first calls find the latencies out
        for app in apps:
            app.calls.clear()
        self.calls(channel, 400)
        fast, slow = (len(app.calls) for app in apps)
        self.assertEqual(fast + slow, 400)
        self.assertLess(slow / 400, 0.2, (fast, slow))

    def test_round_robin_when_asked(self):
        egress, channel, apps = self.replicas([0.005, 0.050],
                                              extra=["--lb-policy", f"{SERVICE}=round-robin"])
        self.calls(channel, 100)
        self.assertEqual([len(app.calls) for app in apps], [50, 50])


class RetryTest(GrpcCase):
    """Retries on gRPC status at the ingress, counted by the app (each hop retries on its
    own: the client talks to the ingress straight over TLS so that the counts are
    exact)."""

    def ingress(self, extra=()):
        proc, port = self.start_ingress(self.app.port, self.cert, self.key,
                                        options="protocol=grpc", extra=list(extra))
        return proc, self.tls_channel(port)

    def unary(self, channel, payload=b"x", timeout=10):
        return channel.unary_unary("/test.Echo/Unary").with_call(payload, timeout=timeout)

    def test_unavailable_is_retried_trailers_only_and_in_trailers(self):
        proc, channel = self.ingress()
        self.app.fail_next = [("UNAVAILABLE", "trailers-only"), ("UNAVAILABLE", "trailers")]
        response, call = self.unary(channel)
        self.assertEqual((response, call.code()), (b"x", grpc.StatusCode.OK))
        self.assertEqual(len(self.app.calls), 3)
        self.assertEqual(proc.stat("ringside_http_listener_request_retries_total"), 2, self.diag())

    def test_each_retry_on_code(self):
        codes = ["CANCELLED", "DEADLINE_EXCEEDED", "INTERNAL", "RESOURCE_EXHAUSTED",
                 "UNAVAILABLE"]
        _, channel = self.ingress(["--grpc-retry-on", "cancelled,deadline-exceeded,internal,"
                                   "resource-exhausted,unavailable"])
        for code in codes:
            self.app.calls.clear()
            self.app.fail_next = [(code, "trailers")]
            response, call = self.unary(channel)
            self.assertEqual(call.code(), grpc.StatusCode.OK, code)
            self.assertEqual(len(self.app.calls), 2, code)

    def test_a_status_not_named_is_not_retried(self):
        _, channel = self.ingress()  # default: unavailable only
        self.app.fail_next = [("INTERNAL", "trailers")]
        with self.assertRaises(grpc.RpcError) as caught:
            self.unary(channel)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INTERNAL)
        self.assertEqual(len(self.app.calls), 1)

    def test_no_retry_after_response_data(self):
        _, channel = self.ingress()
        self.app.fail_next = [("UNAVAILABLE", "after-data")]
        replies = []
        with self.assertRaises(grpc.RpcError) as caught:
            for reply in channel.unary_stream("/test.Echo/ServerStream")(bytes([3]), timeout=10):
                replies.append(reply)
        self.assertEqual(replies, [b"first"])
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(len(self.app.calls), 1)

    def test_retries_are_bounded(self):
        proc, channel = self.ingress(["--retries", "2"])
        self.app.fail_next = [("UNAVAILABLE", "trailers")] * 10
        with self.assertRaises(grpc.RpcError) as caught:
            self.unary(channel)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(len(self.app.calls), 3)  # the first try and two retries

    def test_a_request_over_64k_is_not_held_and_not_retried(self):
        _, channel = self.ingress()
        self.app.fail_next = [("UNAVAILABLE", "trailers")]
        with self.assertRaises(grpc.RpcError) as caught:
            self.unary(channel, payload=b"y" * (100 * 1024))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(len(self.app.calls), 1)

    def test_per_try_timeout_retries_a_slow_attempt(self):
        proc, channel = self.ingress(["--grpc-per-try-timeout", "300ms"])
        self.app.fail_next = [("OK", 3.0)]  # the first attempt sleeps 3 s
        started = time.monotonic()
        response, call = self.unary(channel)
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(len(self.app.calls), 2)
        self.assertEqual(proc.stat("ringside_http_listener_request_retries_total"), 1, self.diag())


class MetricsTest(GrpcCase):
    def series(self, proc, metric, **labels):
        """The sum of metric over the series carrying every label given."""
        total = 0
        for (name, text), value in proc.stats().items():
            if name == metric and all(f'{k}="{v}"' in text for k, v in labels.items()):
                total += value
        return total

    def test_calls_answers_duration_and_messages_per_method(self):
        proc, port = self.start_ingress(self.app.port, self.cert, self.key,
                                        options="protocol=grpc",
                                        extra=["--grpc-retry-on", "none"])
        channel = self.tls_channel(port)
        unary = channel.unary_unary("/test.Echo/Unary")
        for _ in range(3):
            unary(b"ok", timeout=10)
        self.app.fail_next = [("UNAVAILABLE", "trailers")]
        with self.assertRaises(grpc.RpcError):
            unary(b"fails", timeout=10)
        self.assertEqual(len(list(channel.unary_stream("/test.Echo/ServerStream")(
            bytes([5]), timeout=10))), 5)
        self.assertEqual(len(list(channel.stream_stream("/test.Echo/Bidi")(
            iter([b"a", b"b", b"c", b"d"]), timeout=10))), 4)
        with self.assertRaises(grpc.RpcError) as caught:
            channel.unary_unary("/test.Missing/Call")(b"x", timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

        def settled():  # the last call's end is counted when its stream ends
            return self.series(proc, "ringside_grpc_call_duration_seconds_count") == 7
        self.assertTrue(harness.wait_until(settled, timeout=5), self.diag())
        u = {"method": "/test.Echo/Unary"}
        self.assertEqual(self.series(proc, "ringside_grpc_calls_total", **u), 4)
        self.assertEqual(self.series(proc, "ringside_grpc_answers_total", grpc_code="OK", **u), 3)
        self.assertEqual(
            self.series(proc, "ringside_grpc_answers_total", grpc_code="UNAVAILABLE", **u), 1)
        self.assertEqual(self.series(proc, "ringside_grpc_call_duration_seconds_count", **u), 4)
        self.assertEqual(self.series(proc, "ringside_grpc_request_messages_total", **u), 4)
        self.assertEqual(self.series(proc, "ringside_grpc_response_messages_total", **u), 3)
        s = {"method": "/test.Echo/ServerStream"}
        self.assertEqual(self.series(proc, "ringside_grpc_request_messages_total", **s), 1)
        self.assertEqual(self.series(proc, "ringside_grpc_response_messages_total", **s), 5)
        b = {"method": "/test.Echo/Bidi"}
        self.assertEqual(self.series(proc, "ringside_grpc_request_messages_total", **b), 4)
        self.assertEqual(self.series(proc, "ringside_grpc_response_messages_total", **b), 4)
        self.assertEqual(self.series(proc, "ringside_grpc_answers_total", grpc_code="UNIMPLEMENTED",
                                     method="/test.Missing/Call"), 1)
        # The service label is the upstream service, as in the ringside_http_service_* series.
        self.assertEqual(self.series(proc, "ringside_grpc_calls_total",
                                     service=f"{SERVICE}@{LOOPBACK}:{self.app.port}"), 7)
        # And Prometheus's own checker accepts the families.
        promtool = harness.require_tool("promtool")
        status, text = proc.admin_request("GET", "/stats")
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                                text=True, timeout=30)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))


class LongLivedStreamTest(GrpcCase):
    def paced(self, messages, gap, started=None):
        for i, m in enumerate(messages):
            if i == 1 and started is not None:
                started.wait(10)
            if i:
                time.sleep(gap)
            yield m

    def test_a_bidi_stream_outlives_the_idle_timeouts_while_messages_flow(self):
        # 12 messages 0.3 s apart: 3.3 s, three times the idle timeouts of either sidecar.
        idle = ["--http-idle-timeout", "1s"]
        _, _, channel = self.chain(ingress_extra=idle, egress_extra=idle)
        messages = [b"m%d" % i for i in range(12)]
        echoed = list(channel.stream_stream("/test.Echo/Bidi")(self.paced(messages, 0.3),
                                                              timeout=20))
        self.assertEqual(echoed, messages)

    def test_drain_lets_an_open_stream_finish(self):
        ingress, port = self.start_ingress(self.app.port, self.cert, self.key,
                                           options="protocol=grpc",
                                           extra=["--drain-timeout", "10s"])
        channel = self.tls_channel(port)
        started = threading.Event()
        messages = [b"before", b"after-1", b"after-2", b"after-3"]
        responses = channel.stream_stream("/test.Echo/Bidi")(
            self.paced(messages, 0.3, started), timeout=20)
        self.assertEqual(next(responses), b"before")
        status, _ = ingress.admin_request("POST", "/drain")
        self.assertEqual(status, 202)
        started.set()  # the rest of the stream flows after the drain began
        self.assertEqual([b"before"] + list(responses), messages)
        self.assertEqual(responses.code(), grpc.StatusCode.OK)
        # The stream ended the connection's work: the sidecar finishes well before the
        # drain timeout.
        self.assertTrue(harness.wait_until(lambda: ingress.poll() is not None,
                                           timeout=8), self.diag())


class HealthCheckTest(GrpcCase):
    FAST = ["--health-check-interval", "200ms", "--health-check-timeout", "150ms",
            "--health-check-healthy-threshold", "2", "--health-check-unhealthy-threshold", "2"]

    def endpoint_states(self, proc):
        status, body = proc.admin_request("GET", "/clusters")
        document = json.loads(body)
        clusters = document["clusters"] if isinstance(document, dict) else document
        (service,) = [c for c in clusters if c["name"] == SERVICE]
        return {e["address"]: (e["state"], e["health"]) for e in service["endpoints"]}

    def wait_state(self, proc, address, state):
        self.assertTrue(harness.wait_until(
            lambda: self.endpoint_states(proc)[address] == state, timeout=5),
            self.endpoint_states(proc))

    def test_grpc_checks_take_an_endpoint_out_and_bring_it_back(self):
        second = EchoApp()
        self.addCleanup(second.close)
        apps = [self.app, second]
        addresses = [f"{LOOPBACK}:{a.port}" for a in apps]
        egress, egress_port = self.start_egress(
            [a.port for a in apps], self.ca, options="protocol=grpc,tls=off",
            extra=["--health-check", f"{SERVICE}=grpc"] + self.FAST)
        channel = grpc.insecure_channel(f"{LOOPBACK}:{egress_port}", options=CHANNEL_OPTIONS)
        self.addCleanup(channel.close)
        unary = channel.unary_unary("/test.Echo/Unary")
        self.assertTrue(harness.wait_until(
            lambda: all(h == "passing" for _, h in self.endpoint_states(egress).values()),
            timeout=5), self.endpoint_states(egress))

        second.serving = False
        self.wait_state(egress, addresses[1], ("unhealthy", "failing: NOT_SERVING"))
        self.assertEqual(egress.stat("ringside_cluster_endpoints_unhealthy"), 1)
        for app in apps:
            app.calls.clear()
        for _ in range(40):
            unary(b"x", timeout=10)
        self.assertEqual((len(self.app.calls), len(second.calls)), (40, 0))

        second.serving = True
        self.wait_state(egress, addresses[1], ("active", "passing"))
        for _ in range(40):
            unary(b"x", timeout=10)
        self.assertGreater(len(second.calls), 0)

    def test_grpc_checks_over_tls_through_remote_sidecars(self):
        # Each replica behind its own ingress sidecar (TLS, client certificate required):
        # the egress checks them over TLS, h2 by ALPN, with its own certificate, and the
        # ingress passes the check to its app.
        second = EchoApp()
        self.addCleanup(second.close)
        ports = []
        for i, app in enumerate((self.app, second)):
            _, port = self.start_ingress(app.port, self.cert, self.key, trust=self.ca,
                                         client_cert="require", options="protocol=grpc",
                                         name=f"ingress-{i}")
            ports.append(port)
        egress, _ = self.start_egress(
            ports, self.ca, cert=self.client_cert, key=self.client_key, options="protocol=grpc",
            extra=["--health-check", f"{SERVICE}=grpc", "--service-name", CLIENT_SERVICE] +
            self.FAST)
        addresses = [f"{LOOPBACK}:{p}" for p in ports]
        self.assertTrue(harness.wait_until(
            lambda: all(h == "passing" for _, h in self.endpoint_states(egress).values()),
            timeout=5), self.endpoint_states(egress))
        second.serving = False
        self.wait_state(egress, addresses[1], ("unhealthy", "failing: NOT_SERVING"))
        self.assertEqual(self.endpoint_states(egress)[addresses[0]], ("active", "passing"))
        second.serving = True
        self.wait_state(egress, addresses[1], ("active", "passing"))

    def test_a_tls_check_that_cannot_verify_the_server_fails(self):
        # The egress listener requires a name the endpoint's certificate lacks: the check's
        # handshake fails as the listener's would, and the check says so.
        _, port = self.start_ingress(self.app.port, self.cert, self.key,
                                     options="protocol=http", name="ingress-http")
        egress, _ = self.start_egress([port], self.ca,
                                      options="protocol=http,san=other.sample-namespace",
                                      extra=["--health-check", f"{SERVICE}=http:/"] + self.FAST)
        address = f"{LOOPBACK}:{port}"
        self.assertTrue(harness.wait_until(
            lambda: self.endpoint_states(egress)[address][0] == "unhealthy", timeout=5),
            self.endpoint_states(egress))
        self.assertIn("TLS handshake", self.endpoint_states(egress)[address][1])

    def test_an_unhealthy_local_app_turns_ready_to_503_and_back(self):
        ingress, port = self.start_ingress(self.app.port, self.cert, self.key,
                                           options="protocol=grpc",
                                           extra=["--health-check", "app=grpc"] + self.FAST)
        self.assertTrue(harness.wait_until(lambda: ingress.ready_status() == 200, timeout=5),
                        self.diag())
        self.app.serving = False
        self.assertTrue(harness.wait_until(lambda: ingress.ready_status() == 503, timeout=5))
        status, body = ingress.admin_request("GET", "/ready")
        self.assertEqual((status, body.strip()),
                         (503, f"local app {LOOPBACK}:{self.app.port} unhealthy: NOT_SERVING"))
        # Requests still reach the app: it is the only place to send them.
        self.assertEqual(self.tls_channel(port).unary_unary("/test.Echo/Unary")(
            b"x", timeout=10), b"x")
        self.app.serving = True
        self.assertTrue(harness.wait_until(lambda: ingress.ready_status() == 200, timeout=5))

    def test_ready_waits_for_the_first_passing_check(self):
        dead = harness.free_port()
        ingress, _ = self.start_ingress(dead, self.cert, self.key, options="protocol=http",
                                        extra=["--health-check", "app=http:/healthz"] + self.FAST,
                                        wait_ready=False)
        self.assertTrue(harness.wait_until(
            lambda: ingress.admin_request("GET", "/ready")[0] is not None, timeout=10))
        time.sleep(1.0)  # five checks: refused every time
        status, body = ingress.admin_request("GET", "/ready")
        self.assertEqual(status, 503)
        self.assertIn(f"local app {LOOPBACK}:{dead} not healthy yet: connect: Connection refused",
                      body)

    def test_http_checks_of_the_local_app(self):
        import scripted_upstream as su
        state = {"code": 200}
        up = su.ScriptedUpstream(su.serve(lambda request, conn: su.response(
            state["code"], b"ok" if request.target == "/healthz" else b"?")))
        self.addCleanup(up.close)
        ingress, _ = self.start_ingress(up.port, self.cert, self.key, options="protocol=http",
                                        extra=["--health-check", "app=http:/healthz"] + self.FAST)
        self.assertTrue(harness.wait_until(lambda: ingress.ready_status() == 200, timeout=5),
                        self.diag())
        self.assertTrue(all(r.target == "/healthz" for r in up.requests()))
        state["code"] = 503
        self.assertTrue(harness.wait_until(lambda: ingress.ready_status() == 503, timeout=5))
        self.assertIn("unhealthy: HTTP 503", ingress.admin_request("GET", "/ready")[1])

    def test_tcp_checks_find_a_dead_sidecar(self):
        _, live_port = self.start_ingress(self.app.port, self.cert, self.key,
                                          options="protocol=grpc", name="ingress-live")
        dead_port = harness.free_port()
        egress, _ = self.start_egress([live_port, dead_port], self.ca, options="protocol=grpc",
                                      extra=["--health-check", f"{SERVICE}=tcp"] + self.FAST)
        self.assertTrue(harness.wait_until(
            lambda: egress.stat("ringside_cluster_endpoints_unhealthy") == 1, timeout=5))
        states = self.endpoint_states(egress)
        self.assertEqual(states[f"{LOOPBACK}:{dead_port}"],
                         ("unhealthy", "failing: connect: Connection refused"))
        self.assertEqual(states[f"{LOOPBACK}:{live_port}"], ("active", "passing"))


class CancelTest(GrpcCase):
    def test_client_cancel_cancels_the_app_call(self):
        ingress, egress, channel = self.chain()
        call = channel.stream_stream("/test.Echo/Bidi")
        gate = threading.Event()

        def messages():
            yield b"first"
            gate.wait(10)

        responses = call(messages(), timeout=20)
        self.assertEqual(next(responses), b"first")
        responses.cancel()
        gate.set()
        # Both hops cancel their upstream stream at once (RST_STREAM): the egress toward
        # the ingress, the ingress toward the app. (Counted by the proxies: whether
        # grpcio's handler notices in time is grpcio's business.)
        for proc in (egress, ingress):
            self.assertTrue(harness.wait_until(
                lambda: proc.stat("ringside_listener_http2_upstream_resets_sent_total") == 1,
                timeout=5), self.diag())


if __name__ == "__main__":
    harness.main()
