"""Process life cycle: SIGTERM drains (listeners close, open transfers finish, exit 0),
the drain timeout bounds the wait, POST /drain, `ringside probe` through a drain, and bad
flags are refused with one line on stderr and exit status 2."""

import hashlib
import os
import signal
import socket
import subprocess
import threading
import time

import harness
from harness import LOOPBACK, SERVICE


def probe(admin_port, *extra):
    """`ringside probe` against the sidecar whose admin port this is: (exit status, its
    one line)."""
    done = subprocess.run([harness.binary("ringside"), "probe", "--admin",
                           f"{LOOPBACK}:{admin_port}", *extra],
                          capture_output=True, text=True, timeout=15)
    lines = done.stdout.splitlines()
    if len(lines) != 1:
        raise AssertionError(f"probe printed {done.stdout!r} {done.stderr!r}, not one line")
    return done.returncode, lines[0]


def connection_refused(port):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class DrainTest(harness.PkiCase):
    def test_sigterm_lets_a_transfer_in_flight_finish(self):
        app = self.start_echo_app()
        ingress, ingress_port, _, egress_port = self.start_chain(
            app, ingress_extra=["--drain-timeout", "20s"])
        payload = os.urandom(40 * 64 * 1024)
        sock = harness.connect(egress_port, timeout=60)
        self.addCleanup(sock.close)
        received = []
        reader_done = threading.Event()

        def reader():
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    received.append(data)
            except OSError as e:
                received.append(f"<error {e}>".encode())
            reader_done.set()

        threading.Thread(target=reader, daemon=True).start()
        # The slow writer: 64 KiB every 50 ms, SIGTERM after the first few chunks.
        sent_signal_at = None
        refused = None
        ready_after = None
        for i in range(40):
            sock.sendall(payload[i * 65536:(i + 1) * 65536])
            if i == 5:
                ingress.signal(signal.SIGTERM)
                sent_signal_at = time.monotonic()
            if i == 15:
                # By now the listener must be closed, and /ready, still served while the
                # transfer drains, must say not ready.
                refused = harness.wait_until(lambda: connection_refused(ingress_port),
                                             timeout=10)
                ready_after = ingress.admin_request("GET", "/ready")
            time.sleep(0.05)
        sock.shutdown(socket.SHUT_WR)
        self.assertTrue(reader_done.wait(30), f"echo did not finish\n{self.diag()}")
        data = b"".join(received)
        self.assertEqual(len(data), len(payload), self.diag())
        self.assertEqual(hashlib.sha256(data).digest(), hashlib.sha256(payload).digest())
        status = ingress.wait(timeout=25 - (time.monotonic() - sent_signal_at))
        self.assertEqual(status, 0, f"exit status after drain\n{self.diag()}")
        self.assertEqual(ready_after[0], 503, f"GET /ready while draining: {ready_after}")
        self.assertTrue(refused, f"ingress still accepted connections after SIGTERM\n{self.diag()}")

    def test_drain_timeout_bounds_the_wait_for_an_idle_connection(self):
        app = self.start_echo_app()
        ingress, port = self.start_ingress(app, self.cert, self.key,
                                           extra=["--drain-timeout", "1s"])
        ctx = harness.tls_client_context(self.ca)
        with harness.connect(port) as raw:
            with ctx.wrap_socket(raw, server_hostname=SERVICE) as tls:
                tls.sendall(b"ping")
                self.assertEqual(tls.recv(4), b"ping")
                started = time.monotonic()
                ingress.signal(signal.SIGTERM)
                status = ingress.wait(timeout=10)
                elapsed = time.monotonic() - started
                self.assertEqual(status, 0, f"after {elapsed:.1f} s\n{self.diag()}")
                # It waited for the connection (about the drain timeout), then closed it.
                self.assertGreaterEqual(elapsed, 0.5, self.diag())
                # Closed by the proxy, not left hanging (a timeout is neither).
                leftover, ending = harness.read_until_closed(tls, timeout=5)
                self.assertIn(ending, ("eof", "reset"), self.diag())
                self.assertEqual(leftover, b"")

    def test_sigterm_without_connections_exits_at_once(self):
        app = self.start_echo_app()
        ingress, _ = self.start_ingress(app, self.cert, self.key,
                                        extra=["--drain-timeout", "30s"])
        ingress.signal(signal.SIGTERM)
        self.assertEqual(ingress.wait(timeout=10), 0, self.diag())

    def test_post_drain_turns_ready_and_the_probe_to_503(self):
        app = self.start_echo_app()
        ingress, port = self.start_ingress(app, self.cert, self.key,
                                           extra=["--drain-timeout", "60s"])
        self.assertEqual(ingress.ready_status(), 200)
        admin = f"{LOOPBACK}:{ingress.admin_port}"
        self.assertEqual(probe(ingress.admin_port), (0, f"ready: {admin} answered 200 ready"))
        # An open connection keeps the drain (and so the admin port) going: /ready is
        # asked while draining, not after the process has gone.
        with harness.draining(ingress, port, self.ca):
            ready = harness.wait_until(lambda: ingress.ready_status() != 200, timeout=10)
            answer = ingress.admin_request("GET", "/ready")
            self.assertTrue(ready, f"still ready after POST /drain\n{self.diag()}")
            self.assertEqual(answer[0], 503,
                             f"GET /ready while draining: {answer}\n{self.diag()}")
            self.assertEqual(probe(ingress.admin_port, "--timeout", "1s"),
                             (1, f"not ready: {admin} answered 503 draining"))
            self.assertIsNone(ingress.poll(), "exited with a connection open")
        # The last connection gone, the drain ends and the process exits 0.
        self.assertEqual(ingress.wait(timeout=20), 0, self.diag())
        code, line = probe(ingress.admin_port)
        self.assertEqual(code, 1)
        self.assertTrue(line.startswith(f"not ready: cannot connect to {admin}"), line)


class BadFlagsTest(harness.PkiCase):
    def run_ringside(self, *args):
        argv = [harness.binary("ringside"), "--admin", f"{LOOPBACK}:{harness.free_port()}",
                *args]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            self.fail(f"ringside kept running with bad flags: {argv}")
        return done.returncode, done.stderr.decode("utf-8", "replace")

    def assert_refused(self, must_mention, *args):
        status, stderr = self.run_ringside(*args)
        lines = [line for line in stderr.splitlines() if line.strip()]
        self.assertEqual(status, 2, f"exit status for {args}; stderr: {stderr}")
        self.assertEqual(len(lines), 1, f"stderr should be one line: {stderr!r}")
        for word in must_mention:
            self.assertIn(word, lines[0])

    def ingress_args(self, cert=None, key=None):
        return ["--service-name", SERVICE,
                "--ingress", f"{LOOPBACK}:{harness.free_port()}={LOOPBACK}:1",
                "--cert", cert or self.cert, "--key", key or self.key]

    def test_unknown_flag(self):
        self.assert_refused(["--no-such-flag"], *self.ingress_args(), "--no-such-flag")

    def test_bad_listener_address(self):
        self.assert_refused(["nope"], "--service-name", SERVICE, "--cert", self.cert,
                            "--key", self.key, "--ingress", "nope=1.2.3.4:1")

    def test_missing_certificate_file(self):
        self.assert_refused(["/nonexistent/cert.pem"],
                            *self.ingress_args(cert="/nonexistent/cert.pem"))

    def test_missing_trust_file(self):
        self.assert_refused(["/nonexistent/ca.pem"], *self.ingress_args(), "--trust",
                            "/nonexistent/ca.pem")

    def test_key_that_does_not_match_the_certificate(self):
        # The client certificate's key with the server certificate.
        self.assert_refused(["key"], *self.ingress_args(key=self.client_key))

    def test_bad_duration(self):
        self.assert_refused(["drain-timeout"], *self.ingress_args(), "--drain-timeout",
                            "5 fortnights")

    def test_egress_without_upstream(self):
        self.assert_refused([SERVICE], "--egress", f"{LOOPBACK}:{harness.free_port()}={SERVICE}",
                            "--trust", self.ca)

    def test_access_log_in_a_missing_directory_is_refused(self):
        self.assert_refused(["access", "log"], "--service-name", SERVICE,
                            "--cert", self.cert, "--key", self.key, "--ingress",
                            f"{LOOPBACK}:{harness.free_port()}={LOOPBACK}:1,protocol=http",
                            "--access-log", "/nonexistent-dir/access.log")

    def test_help_exits_zero(self):
        done = subprocess.run([harness.binary("ringside"), "--help"], capture_output=True,
                              timeout=15)
        self.assertEqual(done.returncode, 0)
        self.assertIn(b"--ingress", done.stdout)


if __name__ == "__main__":
    harness.main()
