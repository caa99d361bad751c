"""Resources: running out of file descriptors must not make the proxy spin, and no kind
of connection (good, failed handshake, refused upstream) may leak a descriptor."""

import os
import socket
import threading
import time

import harness
from harness import listener_label


class DescriptorExhaustionTest(harness.PkiCase):
    NOFILE = 64
    CLIENTS = 120
    CPU_BOUND_S = 0.5  # a bound on spinning, not a performance figure

    def test_no_spin_while_out_of_descriptors_and_recovery_after(self):
        app = self.start_echo_app()
        ingress, port = self.start_ingress(
            app, self.cert, self.key, threads=1, nofile=self.NOFILE,
            extra=["--handshake-timeout", "60s"])
        self.assertEqual(harness.tls_echo(port, self.ca), b"ping", self.diag())

        clients = []
        self.addCleanup(lambda: [c.close() for c in clients])
        for _ in range(self.CLIENTS):
            try:
                clients.append(harness.connect(port, timeout=3))
            except OSError:
                break  # the backlog is full: exhausted all the same
        # Let the accept loop hit the descriptor limit (proved by accept_errors below;
        # the admin port may not answer while no descriptor is free).
        time.sleep(1)
        cpu_before = ingress.cpu_seconds()
        time.sleep(2)
        cpu_used = ingress.cpu_seconds() - cpu_before
        self.assertLess(cpu_used, self.CPU_BOUND_S,
                        f"the proxy used {cpu_used:.2f} s of CPU in 2 s while out of "
                        f"descriptors ({ingress.fd_count()} open; spinning on accept?)\n{self.diag()}")
        self.assertIsNone(ingress.poll(), self.diag())

        for c in clients:
            c.close()
        clients.clear()

        def serves():
            try:
                return harness.tls_echo(port, self.ca, b"after", timeout=3) == b"after"
            except OSError:
                return False

        self.assertTrue(harness.wait_until(serves, timeout=15, interval=0.5),
                        f"no recovery after the clients left\n{self.diag()}")
        self.assertGreater(ingress.stat("ringside_worker_accept_errors_total"), 0, self.diag())

    def test_connections_waiting_for_descriptors_are_kept_not_dropped(self):
        """Short of descriptors the proxy pauses accepting, so the connections it could
        not take wait in the backlog; none is closed unanswered, and once descriptors
        free up a waiting client completes its handshake."""
        app = self.start_echo_app()
        ingress, port = self.start_ingress(
            app, self.cert, self.key, threads=1, nofile=self.NOFILE,
            extra=["--handshake-timeout", "60s"])
        self.assertEqual(harness.tls_echo(port, self.ca), b"ping", self.diag())
        clients = []
        self.addCleanup(lambda: [c.close() for c in clients])
        for _ in range(self.CLIENTS):
            try:
                clients.append(harness.connect(port, timeout=3))
            except OSError:
                break
        time.sleep(1.5)
        dropped = 0
        for c in clients:
            c.setblocking(False)
            try:
                if c.recv(1, socket.MSG_PEEK) == b"":
                    dropped += 1
            except BlockingIOError:
                pass  # still open: waiting, as it should
            except OSError:
                dropped += 1
        self.assertEqual(dropped, 0,
                         f"{dropped} of {len(clients)} waiting clients were closed without a "
                         f"word while the proxy was short of descriptors\n{self.diag()}")
        # Free descriptors by closing the first half; a waiting client then gets served.
        half = len(clients) // 2
        for c in clients[:half]:
            c.close()
        waiting = clients[-1]
        waiting.setblocking(True)
        ctx = harness.tls_client_context(self.ca)
        with ctx.wrap_socket(waiting, server_hostname=harness.SERVICE) as tls:
            tls.settimeout(30)
            tls.sendall(b"waited")
            self.assertEqual(tls.recv(6), b"waited")


class DescriptorLeakTest(harness.PkiCase):
    ROUNDS = 200

    def test_descriptors_return_to_baseline_after_every_kind_of_connection(self):
        app = self.start_echo_app()
        dead = harness.free_port()
        ingress_port = harness.free_port()
        egress_port = harness.free_port()
        # One process with both listeners: a working ingress, an egress to nowhere.
        proxy = self.start_ringside(
            ["--service-name", harness.SERVICE,
             "--ingress", f"127.0.0.1:{ingress_port}=127.0.0.1:{app}",
             "--egress", f"127.0.0.1:{egress_port}={harness.SERVICE}",
             "--upstream", f"{harness.SERVICE}=127.0.0.1:{dead}",
             "--cert", self.cert, "--key", self.key, "--trust", self.ca],
            name="proxy")
        ingress_label = listener_label("ingress", ingress_port)
        egress_label = listener_label("egress", egress_port)

        def good():
            self.assertEqual(harness.tls_echo(ingress_port, self.ca, b"ok"), b"ok")

        def bad_handshake():
            with harness.connect(ingress_port) as sock:
                sock.sendall(b"\x16\x03\x01\x00\x05hello-not-a-hello")
                harness.read_until_closed(sock, timeout=5)

        def refused_upstream():
            with harness.connect(egress_port) as sock:
                sock.sendall(b"anyone?")
                harness.read_until_closed(sock, timeout=5)

        # Warm up each path once so that lazily created state is not counted as a leak.
        for kind in (good, bad_handshake, refused_upstream):
            kind()
        self.wait_idle(proxy, ingress_label, egress_label)
        baseline = proxy.fd_count()

        for kind in (good, bad_handshake, refused_upstream):
            self.run_concurrently(kind, self.ROUNDS, parallel=4)
            self.wait_idle(proxy, ingress_label, egress_label)
            settled = harness.wait_until(lambda: proxy.fd_count() <= baseline, timeout=5)
            self.assertTrue(settled, f"after {self.ROUNDS} x {kind.__name__}: "
                                     f"{proxy.fd_count()} descriptors, baseline {baseline}\n"
                                     f"{self.diag()}")

        self.assertGreaterEqual(proxy.stat("ringside_listener_tls_handshake_failure_total",
                                           ingress_label), self.ROUNDS)
        self.assertGreaterEqual(proxy.stat("ringside_listener_upstream_cx_connect_fail_total",
                                           egress_label), self.ROUNDS)

    def run_concurrently(self, action, count, parallel):
        errors = []
        per_thread = count // parallel

        def loop():
            try:
                for _ in range(per_thread):
                    action()
            except Exception as e:  # reported below, with the proxy's output
                errors.append(e)

        threads = [threading.Thread(target=loop) for _ in range(parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        if errors:
            self.fail_with_diag(f"{action.__name__}: {errors[0]!r}")

    def wait_idle(self, proxy, *labels):
        def idle():
            stats = proxy.stats()
            return all(proxy.stat("ringside_listener_cx_active", label, stats) == 0 and
                       proxy.stat("ringside_listener_upstream_cx_active", label, stats) == 0
                       for label in labels)

        if not harness.wait_until(idle, timeout=5, interval=0.1):
            self.fail_with_diag("connections still active a while after every client left")


if __name__ == "__main__":
    harness.main()
