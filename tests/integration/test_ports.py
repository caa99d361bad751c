"""Addresses in use: a listen address or the admin address that another process holds,
another ringside or not, stops the start with one line naming it and exit status 2
(the workers of one process still share their SO_REUSEPORT group); and GET /ready says
503 from the moment a drain is accepted."""

import signal
import socket
import subprocess

import harness
from harness import LOOPBACK, SERVICE


def hold_port(port, reuseport):
    """A listening socket of this (non-ringside) process on LOOPBACK:port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(16)
    return sock


class PortInUseTest(harness.PkiCase):
    def ingress_args(self, port, app_port=1):
        return ["--service-name", SERVICE, "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app_port}",
                "--cert", self.cert, "--key", self.key]

    def run_ringside(self, admin, *args):
        argv = [harness.binary("ringside"), "--admin", admin, "--threads", "2", *args]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            self.fail(f"ringside started although an address was in use: {argv}\n{self.diag()}")
        return done.returncode, done.stderr.decode("utf-8", "replace")

    def assert_refused(self, must_mention, admin, *args):
        status, stderr = self.run_ringside(admin, *args)
        lines = [line for line in stderr.splitlines() if line.strip()]
        self.assertEqual(status, 2, f"exit status; stderr: {stderr}")
        self.assertEqual(len(lines), 1, f"stderr should be one line: {stderr!r}")
        for word in must_mention:
            self.assertIn(word, lines[0])
        self.assertIn("in use", lines[0])

    def free_admin(self):
        return f"{LOOPBACK}:{harness.free_port()}"

    def test_second_ringside_on_the_same_listen_port_exits_2(self):
        app = self.start_echo_app()
        _, port = self.start_ingress(app, self.cert, self.key, threads=2)
        self.assert_refused([f"ingress_{LOOPBACK}:{port}"], self.free_admin(),
                            *self.ingress_args(port, app))
        # Every connection still reaches the first one, on either of its workers.
        for i in range(8):
            payload = f"round {i}".encode()
            self.assertEqual(harness.tls_echo(port, self.ca, payload), payload, self.diag())

    def test_port_held_by_another_program_with_so_reuseport_exits_2(self):
        port = harness.free_port()
        with hold_port(port, reuseport=True):
            self.assert_refused([f"ingress_{LOOPBACK}:{port}"], self.free_admin(),
                                *self.ingress_args(port))

    def test_port_held_by_another_program_exits_2(self):
        port = harness.free_port()
        with hold_port(port, reuseport=False):
            self.assert_refused([f"ingress_{LOOPBACK}:{port}"], self.free_admin(),
                                *self.ingress_args(port))

    def test_admin_address_held_by_another_program_exits_2(self):
        admin_port = harness.free_port()
        with hold_port(admin_port, reuseport=False):
            self.assert_refused([f"--admin {LOOPBACK}:{admin_port}"], f"{LOOPBACK}:{admin_port}",
                                *self.ingress_args(harness.free_port()))

    def test_two_ringsides_with_one_admin_address_second_exits_2(self):
        app = self.start_echo_app()
        first, _ = self.start_ingress(app, self.cert, self.key)
        admin = f"{LOOPBACK}:{first.admin_port}"
        self.assert_refused([f"--admin {admin}"], admin,
                            *self.ingress_args(harness.free_port(), app))
        self.assertEqual(first.ready_status(), 200, self.diag())

    def test_admin_off_runs_without_an_admin_listener(self):
        port = harness.free_port()
        app = self.start_echo_app()
        argv = [harness.binary("ringside"), "--admin", "off", "--threads", "2",
                *self.ingress_args(port, app)]
        proc = self.start("no-admin", argv)
        ok = harness.wait_until(lambda: proc.poll() is not None or "ringside started" in
                                proc.stderr_text(), timeout=15)
        self.assertTrue(ok and proc.poll() is None, f"did not start\n{self.diag()}")
        self.assertEqual(harness.tls_echo(port, self.ca, b"no admin"), b"no admin", self.diag())


class ReadyDuringDrainTest(harness.PkiCase):
    def start_held_open(self):
        """An ingress with a connection open, so that a drain lasts (--drain-timeout)."""
        app = self.start_echo_app()
        ingress, port = self.start_ingress(app, self.cert, self.key,
                                           extra=["--drain-timeout", "60s"])
        ctx = harness.tls_client_context(self.ca)
        raw = harness.connect(port)
        tls = ctx.wrap_socket(raw, server_hostname=SERVICE)
        self.addCleanup(tls.close)
        tls.sendall(b"ping")
        self.assertEqual(tls.recv(4), b"ping")
        self.assertEqual(ingress.ready_status(), 200)
        return ingress

    def test_ready_is_503_right_after_post_drain_is_answered(self):
        ingress = self.start_held_open()
        status, body = ingress.admin_request("POST", "/drain")
        self.assertEqual(status, 202, body)
        # Asked at once: the control loop may not have turned yet.
        self.assertEqual(ingress.admin_request("GET", "/ready"), (503, "draining\n"), self.diag())
        self.assertIsNone(ingress.poll(), "exited with a connection open")

    def test_ready_is_503_right_after_sigterm(self):
        ingress = self.start_held_open()
        ingress.signal(signal.SIGTERM)
        ok = harness.wait_until(lambda: "received SIGTERM" in ingress.stderr_text(), timeout=5)
        self.assertTrue(ok, self.diag())
        self.assertEqual(ingress.admin_request("GET", "/ready"), (503, "draining\n"), self.diag())


if __name__ == "__main__":
    harness.main()
