"""ALPN on the listeners (issue 11, first step): a protocol=tcp ingress with alpn=h2:http/1.1
in front of an h2c app (nghttpd) serves `curl --http2` as HTTP/2 end to end; clients offering
nothing we know still connect; protocol=http ingresses negotiate h2 and http/1.1; an egress offers
its alpn= list to the remote side (test_http2.py covers the HTTP listeners' HTTP/2)."""

import os
import re
import subprocess

import harness
from harness import LOOPBACK, SERVICE

BODY = b"hello from the h2c app\n"


class AlpnCase(harness.PkiCase):
    def setUp(self):
        super().setUp()
        self.openssl = harness.require_tool("openssl")

    def start_h2c_app(self):
        """nghttpd --no-tls: an HTTP/2 server speaking h2c (prior knowledge) only."""
        nghttpd = harness.require_tool("nghttpd")
        docroot = os.path.join(self.workdir, "htdocs")
        os.makedirs(docroot)
        with open(os.path.join(docroot, "hello.txt"), "wb") as f:
            f.write(BODY)
        port = harness.free_port()
        self.start("nghttpd", [nghttpd, "--no-tls", "-a", LOOPBACK, "-d", docroot, str(port)])
        if not harness.wait_until(lambda: self.port_open(port), timeout=10):
            self.fail_with_diag("nghttpd did not start listening")
        return port

    @staticmethod
    def port_open(port):
        try:
            harness.connect(port, timeout=1).close()
            return True
        except OSError:
            return False

    def s_client_alpn(self, port, offer):
        """openssl s_client offering `offer` (comma-separated); returns (status, output)."""
        argv = [self.openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
                SERVICE, "-CAfile", self.ca, "-verify_hostname", SERVICE,
                "-verify_return_error"]
        if offer:
            argv += ["-alpn", offer]
        done = subprocess.run(argv, input=b"", capture_output=True, timeout=20)
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")

    def curl(self, port, *options):
        """curl over TLS to SERVICE at port; returns (status, body, HTTP version)."""
        curl = harness.require_tool("curl")
        argv = [curl, "-sS", "--max-time", "10", "--cacert", self.ca, "--resolve",
                f"{SERVICE}:{port}:{LOOPBACK}", "-w", "\n%{http_version}", *options,
                f"https://{SERVICE}:{port}/hello.txt"]
        done = subprocess.run(argv, capture_output=True, timeout=30)
        body, _, version = done.stdout.rpartition(b"\n")
        return done.returncode, body, version.decode(), done.stderr


class TcpIngressAlpnTest(AlpnCase):
    def setUp(self):
        super().setUp()
        self.app_port = self.start_h2c_app()
        self.ingress, self.port = self.start_ingress(
            self.app_port, self.cert, self.key, options="protocol=tcp,alpn=h2:http/1.1")

    def test_curl_http2_reaches_the_h2c_app(self):
        status, body, version, err = self.curl(self.port, "--http2")
        self.assertEqual(status, 0, err.decode(errors="replace") + self.diag())
        self.assertEqual(version, "2", "curl did not negotiate h2")
        self.assertEqual(body, BODY)

    def test_s_client_sees_h2(self):
        status, output = self.s_client_alpn(self.port, "h2")
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("ALPN protocol: h2", output)
        self.assertIn("Verify return code: 0 (ok)", output)

    def test_http11_only_client_gets_http11(self):
        status, output = self.s_client_alpn(self.port, "http/1.1")
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("ALPN protocol: http/1.1", output)

    def test_client_offering_only_foo_still_connects(self):
        status, output = self.s_client_alpn(self.port, "foo")
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("No ALPN negotiated", output)
        self.assertIn("Verify return code: 0 (ok)", output)
        # And the connection is relayed: the h2c app answers an h2 preface through it.
        context = harness.tls_client_context(self.ca)
        context.set_alpn_protocols(["foo"])
        with harness.connect(self.port) as raw:
            with context.wrap_socket(raw, server_hostname=SERVICE) as tls:
                self.assertIsNone(tls.selected_alpn_protocol())
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00"
                            + b"\x00\x00\x00\x00")
                tls.settimeout(10)
                frame = tls.recv(9)
                # The app's first frame is its SETTINGS (type 4) on stream 0.
                self.assertGreaterEqual(len(frame), 4, self.diag())
                self.assertEqual(frame[3], 4, frame)

    def test_client_without_alpn_connects(self):
        status, output = self.s_client_alpn(self.port, None)
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("No ALPN negotiated", output)


class ListenerDefaultsTest(AlpnCase):
    def test_tcp_listener_without_alpn_key_negotiates_nothing(self):
        app = self.start_echo_app()
        _, port = self.start_ingress(app, self.cert, self.key)
        status, output = self.s_client_alpn(port, "h2,http/1.1")
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("No ALPN negotiated", output)

    def test_http_listener_negotiates_h2_and_http11(self):
        app = self.start_http_app()
        _, port = self.start_ingress(app, self.cert, self.key, options="protocol=http")
        status, output = self.s_client_alpn(port, "h2,http/1.1")
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("ALPN protocol: h2", output)
        status, output = self.s_client_alpn(port, "http/1.1")
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("ALPN protocol: http/1.1", output)
        # curl --http2 gets HTTP/2 (test_http2.py covers what flows over it).
        status, body, version, err = self.curl(port, "--http2")
        self.assertEqual(status, 0, err.decode(errors="replace") + self.diag())
        self.assertEqual(version, "2")


class EgressAlpnTest(AlpnCase):
    def start_s_server(self):
        """openssl s_server accepting h2 and http/1.1; it prints what the client offered."""
        port = harness.free_port()
        proc = self.start("s_server", [self.openssl, "s_server", "-accept", f"{LOOPBACK}:{port}",
                                       "-cert", self.cert, "-key", self.key,
                                       "-alpn", "h2,http/1.1"], stdin=subprocess.PIPE)
        if not harness.wait_until(lambda: "ACCEPT" in proc.stdout_text()
                                  or proc.poll() is not None, timeout=10):
            self.fail_with_diag("s_server did not start")
        return proc, port

    def offered_through_egress(self, options):
        server, port = self.start_s_server()
        _, egress_port = self.start_egress([port], self.ca, options=options)
        with harness.connect(egress_port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            harness.wait_until(lambda: "ALPN protocols advertised" in server.stdout_text()
                               or "CIPHER is" in server.stdout_text(), timeout=10)
        text = server.stdout_text()
        match = re.search(r"ALPN protocols advertised by the client: (.*)", text)
        return match.group(1).strip() if match else None, text

    def test_egress_offers_its_alpn_list(self):
        offered, text = self.offered_through_egress("protocol=tcp,alpn=h2:http/1.1")
        self.assertEqual(offered, "h2, http/1.1", text + self.diag())

    def test_egress_without_alpn_offers_nothing(self):
        offered, text = self.offered_through_egress("")
        self.assertIsNone(offered, text)

    def test_h2c_through_egress_and_ingress(self):
        """app client -> egress (alpn=h2) -> ingress (alpn=h2:http/1.1) -> nghttpd, h2c at
        both ends: HTTP/2 passes through two L4 sidecars."""
        app_port = self.start_h2c_app()
        _, ingress_port = self.start_ingress(app_port, self.cert, self.key,
                                             options="alpn=h2:http/1.1")
        _, egress_port = self.start_egress([ingress_port], self.ca, options="alpn=h2")
        curl = harness.require_tool("curl")
        done = subprocess.run([curl, "-sS", "--max-time", "10", "--http2-prior-knowledge",
                               "-w", "\n%{http_version}",
                               f"http://{LOOPBACK}:{egress_port}/hello.txt"],
                              capture_output=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr.decode(errors="replace") + self.diag())
        self.assertEqual(done.stdout, BODY + b"\n2")


if __name__ == "__main__":
    harness.main()
