"""Authorization by peer identity (docs/authz.md) against real peers: openssl s_client and
curl presenting client certificates for different identities (DNS and SPIFFE URI SANs,
issued by ringside-ca and by `openssl ca`). Listener allow-lists (exact, wildcard,
trust-domain prefix), per-route rules by method and path, audit mode, the identity header
the app sees (and a forged one stripped), gRPC denial, the local issuer's SPIFFE ID and an
egress that requires one."""

import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile

import harness
import scripted_upstream as su
from harness import LOOPBACK, SERVICE, listener_label

TD = "spiffe://example.org"
ORDERS_ID = f"{TD}/ns/prod/sa/orders"
BILLING_ID = f"{TD}/ns/prod/sa/billing"
TESTER_ID = f"{TD}/ns/dev/sa/tester"
EVIL_ID = "spiffe://evil.org/ns/prod/sa/orders"


class AuthzCase(harness.IntegrationCase):
    """Certificates for five callers, made once: orders (ringside-ca: DNS + URI SAN),
    billing (openssl: DNS + URI), tester (ringside-ca: another namespace and SPIFFE path),
    intruder (openssl: another trust domain) and cn_only (openssl: a CN, no SAN)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki_dir = tempfile.mkdtemp(prefix="ringside-integ-authz-")
        pki = harness.Pki(cls.pki_dir)
        cls.ca_dir = pki.ca()
        cls.ca = os.path.join(cls.ca_dir, "ca.pem")
        cls.cert, cls.key = pki.issue(cls.ca_dir, [SERVICE], label="server")
        cls.callers = {
            "orders": pki.issue(cls.ca_dir, ["orders.sample-ns"], uris=[ORDERS_ID],
                                label="orders"),
            "billing": pki.issue_with_openssl(cls.ca_dir, ["billing.sample-ns"],
                                              uris=[BILLING_ID], label="billing"),
            "tester": pki.issue(cls.ca_dir, ["tester.dev-ns"], uris=[TESTER_ID], label="tester"),
            "intruder": pki.issue_with_openssl(cls.ca_dir, ["intruder.other-ns"],
                                               uris=[EVIL_ID], label="intruder"),
            "cn_only": pki.issue_with_openssl(cls.ca_dir, [], cn="orders.sample-ns",
                                              label="cn-only"),
        }

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki_dir, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.openssl = harness.require_tool("openssl")

    def s_client(self, port, caller, *options, stdin=b"ping\n", timeout=20):
        """openssl s_client presenting caller's certificate; returns (status, output)."""
        cert, key = self.callers[caller]
        argv = [self.openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
                SERVICE, "-CAfile", self.ca, "-verify_return_error", "-brief", "-cert", cert,
                "-key", key, *options]
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")

    def curl(self, port, caller, path="/", method="GET", headers=(), http2=False, data=None):
        """curl over TLS presenting caller's certificate; returns (status, headers, body)."""
        curl = harness.require_tool("curl")
        argv = [curl, "-sS", "--path-as-is", "--max-time", "10", "--cacert", self.ca,
                "--resolve", f"{SERVICE}:{port}:{LOOPBACK}", "-D", "-", "-X", method,
                "--http2" if http2 else "--http1.1"]
        if caller is not None:
            cert, key = self.callers[caller]
            argv += ["--cert", cert, "--key", key]
        for name, value in headers:
            argv += ["-H", f"{name}: {value}"]
        if data is not None:
            argv += ["--data-binary", data]
        argv.append(f"https://{SERVICE}:{port}{path}")
        done = subprocess.run(argv, capture_output=True, timeout=20)
        text = done.stdout.decode("utf-8", "replace")
        if done.returncode != 0:
            return None, {}, done.stderr.decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return status, fields, body

    def upstream(self):
        up = su.ScriptedUpstream(su.serve())
        self.addCleanup(up.close)
        return up

    def ingress(self, app_port, options, extra=()):
        return self.start_ingress(app_port, self.cert, self.key, trust=self.ca,
                                  client_cert="require", options=options, extra=list(extra))


class ListenerAllowListTest(AuthzCase):
    def check(self, allow, admitted, refused, extra_options=""):
        app = self.start_recording_app(echo=True)
        proc, port = self.ingress(app.port, f"allow={allow}" + extra_options)
        label = listener_label("ingress", port)
        for caller in admitted:
            status, output = self.s_client(port, caller)
            self.assertEqual(status, 0, f"{caller}: {output}")
        # Every admitted client's bytes reached the app.
        self.assertTrue(harness.wait_until(lambda: app.total_bytes() == 5 * len(admitted),
                                           timeout=5), self.diag())
        for caller in refused:
            # -ign_eof: keep reading after stdin ends, so the server's verdict is seen.
            status, output = self.s_client(port, caller, "-ign_eof")
            self.assertNotEqual(status, 0, f"{caller} was let in: {output}")
            self.assertIn("alert", output, caller)
        self.assert_stat_moves(proc, "ringside_listener_authz_connections_denied_total", label,
                               0, minimum=len(refused))
        stats = proc.stats()
        self.assertEqual(proc.stat("ringside_listener_authz_connections_denied_total", label,
                                   stats), len(refused))
        self.assertEqual(proc.stat("ringside_listener_authz_connections_allowed_total", label,
                                   stats), len(admitted))
        self.assertEqual(proc.stat("ringside_listener_tls_handshake_failure_total", label,
                                   stats), 0)
        # Refused connections never reached the app: not one byte, not one connection.
        self.assertEqual(app.total_bytes(), 5 * len(admitted))
        self.assertEqual(app.connection_count(), len(admitted))
        return proc

    def test_exact_dns_name(self):
        proc = self.check("orders.sample-ns", ["orders"], ["billing", "intruder", "cn_only"])
        # Logged with the identity the refused client presented.
        self.assertTrue(harness.wait_until(
            lambda: f"identity {EVIL_ID},intruder.other-ns not allowed" in proc.stderr_text(),
            timeout=5), proc.stderr_text())

    def test_dns_wildcard(self):
        self.check("*.sample-ns", ["orders", "billing"], ["tester", "intruder", "cn_only"])

    def test_exact_spiffe_id(self):
        self.check(BILLING_ID, ["billing"], ["orders", "intruder"])

    def test_trust_domain_prefix(self):
        self.check(f"{TD}/*", ["orders", "billing", "tester"], ["intruder", "cn_only"])

    def test_spiffe_path_prefix_and_list(self):
        self.check(f"{TD}/ns/prod/*|tester.dev-ns", ["orders", "billing", "tester"],
                   ["intruder"])

    def test_audit_mode_lets_through_and_counts(self):
        app = self.start_recording_app(echo=True)
        proc, port = self.ingress(app.port, "allow=orders.sample-ns,authz=audit")
        label = listener_label("ingress", port)
        status, output = self.s_client(port, "intruder")
        self.assertEqual(status, 0, output)
        self.assertTrue(harness.wait_until(lambda: app.total_bytes() == 5, timeout=5))
        self.assert_stat_moves(proc, "ringside_listener_authz_connections_would_deny_total",
                               label, 0)
        self.assertEqual(proc.stat("ringside_listener_authz_connections_denied_total", label), 0)
        self.assertTrue(harness.wait_until(
            lambda: "authz=audit: would refuse client" in proc.stderr_text(), timeout=5))


class RouteRulesTest(AuthzCase):
    def start(self, mode="enforce", extra=()):
        self.up = self.upstream()
        options = f"protocol=http,allow={TD}/*,authz={mode}"
        port = harness.free_port()
        listen = f"{LOOPBACK}:{port}"
        rules = [f"{listen},path=/admin,allow={ORDERS_ID}",
                 f"{listen},method=POST|DELETE,path=/orders,allow=*.sample-ns"]
        # Eight more rules that these requests never match: a 10-rule policy.
        rules += [f"{listen},host=h{i}.example,path=/r{i},allow=r{i}.ns" for i in range(8)]
        args = ["--service-name", SERVICE, "--cert", self.cert, "--key", self.key,
                "--trust", self.ca, "--access-log", os.path.join(self.workdir, "access.log"),
                "--ingress", f"{listen}={LOOPBACK}:{self.up.port},client-cert=require,{options}"]
        for rule in rules:
            args += ["--authz-rule", rule]
        self.proc = self.start_ringside(args + list(extra), name="ingress")
        self.port = port
        self.label = listener_label("ingress", port)
        return self.proc

    def paths_seen(self):
        return [r.target for r in self.up.requests()]

    def access_log(self, count):
        path = os.path.join(self.workdir, "access.log")

        def lines():
            try:
                with open(path) as f:
                    return f.read().splitlines()
            except FileNotFoundError:
                return []
        harness.wait_until(lambda: len(lines()) >= count, timeout=5)
        return lines()

    def test_rules_by_path_and_method(self):
        self.start()
        self.assertEqual(self.curl(self.port, "orders", "/admin/users")[0], 200)
        status, _, body = self.curl(self.port, "billing", "/admin/users")
        self.assertEqual(status, 403)
        self.assertIn("forbidden by authorization rule 0", body)
        self.assertIn(BILLING_ID, body)
        # The same rule for a path that needs normalizing first.
        self.assertEqual(self.curl(self.port, "billing", "//admin/./users")[0], 403)
        self.assertEqual(self.curl(self.port, "billing", "/x/../%61dmin")[0], 403)
        # Method rule: a wildcard DNS identity may POST, another namespace may not.
        self.assertEqual(self.curl(self.port, "billing", "/orders/1", method="POST",
                                   data="x")[0], 200)
        status, _, body = self.curl(self.port, "tester", "/orders/1", method="POST", data="x")
        self.assertEqual(status, 403, body)
        self.assertIn("rule 1", body)
        # No rule matches a GET of /orders: the listener's allow-list (passed) decides.
        self.assertEqual(self.curl(self.port, "tester", "/orders/1")[0], 200)
        # Over HTTP/2 as well.
        self.assertEqual(self.curl(self.port, "billing", "/admin", http2=True)[0], 403)
        self.assertEqual(self.curl(self.port, "orders", "/admin", http2=True)[0], 200)
        # Nothing denied reached the app.
        self.assertEqual(sorted(self.paths_seen()),
                         ["/admin", "/admin/users", "/orders/1", "/orders/1"])
        stats = self.proc.stats()
        self.assertEqual(self.proc.stat("ringside_listener_authz_requests_denied_total",
                                        self.label, stats), 5)
        self.assertEqual(self.proc.stat("ringside_listener_authz_requests_allowed_total",
                                        self.label, stats), 3)
        text = self.proc.admin_request("GET", "/stats")[1]
        self.assertRegex(text, r'ringside_authz_rule_requests_total\{listener="' +
                         re.escape(self.label) + r'",rule="0",decision="denied"\} 4')
        self.assertRegex(text, r'ringside_authz_rule_requests_total\{listener="' +
                         re.escape(self.label) + r'",rule="1",decision="allowed"\} 1')
        # The access log names the identity and the decision.
        lines = self.access_log(8)
        denied = [line for line in lines if line.endswith(" denied")]
        self.assertEqual(len(denied), 5, lines)
        self.assertIn(f'"{BILLING_ID},billing.sample-ns" denied', denied[0])
        self.assertTrue(any(line.endswith(f'"{ORDERS_ID},orders.sample-ns" allowed')
                            for line in lines), lines)
        self.assertTrue(any(line.endswith(f'"{TESTER_ID},tester.dev-ns" -') for line in lines),
                        lines)

    def test_audit_mode_passes_and_counts(self):
        self.start(mode="audit")
        self.assertEqual(self.curl(self.port, "billing", "/admin")[0], 200)
        self.assertEqual(self.paths_seen(), ["/admin"])
        self.assert_stat_moves(self.proc, "ringside_listener_authz_requests_would_deny_total",
                               self.label, 0)
        self.assertEqual(self.proc.stat("ringside_listener_authz_requests_denied_total",
                                        self.label), 0)
        self.assertTrue(harness.wait_until(
            lambda: "authz=audit: would deny GET /admin" in self.proc.stderr_text(), timeout=5))
        self.assertTrue(self.access_log(1)[0].endswith(" would_deny"))

    def test_grpc_call_gets_permission_denied(self):
        self.start()
        status, fields, _ = self.curl(
            self.port, "billing", "/admin.Service/Reset", method="POST", http2=True,
            headers=[("content-type", "application/grpc"), ("te", "trailers")], data="")
        self.assertEqual(status, 200)
        self.assertEqual(fields.get("grpc-status"), "7", fields)
        self.assertIn("forbidden by authorization rule 0", fields.get("grpc-message", ""))
        self.assertEqual(self.paths_seen(), [])

    def test_admin_page_shows_the_policy(self):
        self.start()
        doc = json.loads(self.proc.admin_request("GET", "/authz")[1])
        (listener,) = doc["listeners"]
        self.assertEqual(listener["listener"], self.label)
        self.assertEqual(listener["mode"], "enforce")
        self.assertEqual(listener["allow"], [f"{TD}/*"])
        self.assertEqual(len(listener["rules"]), 10)
        self.assertEqual(listener["rules"][1]["methods"], ["POST", "DELETE"])
        self.assertEqual(listener["rules"][0]["allow"], [ORDERS_ID])


class ForwardedClientCertTest(AuthzCase):
    def test_app_sees_the_verified_identity_and_never_a_forged_one(self):
        up = self.upstream()
        _, port = self.ingress(up.port, "protocol=http")
        self.assertEqual(self.curl(port, "orders", "/",
                                   headers=[("X-Forwarded-Client-Cert", "URI=spiffe://forged")])[0],
                         200)
        (req,) = up.requests()
        values = [v for n, v in req.headers if n.lower() == "x-forwarded-client-cert"]
        with open(self.callers["orders"][0]) as f:
            cert_pem = f.read()
        digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest()
        self.assertEqual(values, [f"Hash={digest};URI={ORDERS_ID};DNS=orders.sample-ns"])

    def test_switched_off_still_strips(self):
        up = self.upstream()
        proc, port = self.ingress(up.port, "protocol=http", extra=["--no-forwarded-client-cert"])
        self.assertEqual(self.curl(port, "orders", "/",
                                   headers=[("X-Forwarded-Client-Cert", "URI=spiffe://forged")])[0],
                         200)
        (req,) = up.requests()
        self.assertNotIn("x-forwarded-client-cert", [n.lower() for n, _ in req.headers])

    def test_optional_client_cert_without_one_gets_no_header(self):
        up = self.upstream()
        _, port = self.start_ingress(up.port, self.cert, self.key, trust=self.ca,
                                        client_cert="optional", options="protocol=http")
        self.assertEqual(self.curl(port, None, "/",
                                   headers=[("X-Forwarded-Client-Cert", "Hash=00")])[0], 200)
        self.assertEqual(self.curl(port, "billing", "/")[0], 200)
        first, second = up.requests()
        names = [n.lower() for n, _ in first.headers]
        self.assertNotIn("x-forwarded-client-cert", names)
        value = [v for n, v in second.headers if n.lower() == "x-forwarded-client-cert"]
        self.assertEqual(len(value), 1)
        self.assertIn(f"URI={BILLING_ID};DNS=billing.sample-ns", value[0])


class SpiffeIssuingAndEgressTest(AuthzCase):
    APP_ID = f"{TD}/ns/prod/sa/app"

    def start_issuing_ingress(self, app_port):
        """An ingress whose certificate ringside's local issuer makes, with a SPIFFE ID."""
        port = harness.free_port()
        cert_dir = os.path.join(self.workdir, "issued")
        os.makedirs(cert_dir)
        proc = self.start_ringside([
            "--service-name", SERVICE, "--ca-cert", self.ca,
            "--ca-key", os.path.join(self.ca_dir, "ca.key"), "--cert-dir", cert_dir,
            "--spiffe-id", self.APP_ID,
            "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app_port}"], name="ingress")
        return proc, port, cert_dir

    def test_issued_certificate_carries_the_spiffe_id(self):
        app = self.start_recording_app(echo=True)
        proc, _, cert_dir = self.start_issuing_ingress(app.port)
        certs = json.loads(proc.admin_request("GET", "/certs")[1])
        self.assertIn(self.APP_ID, json.dumps(certs))
        shown = subprocess.run([harness.binary("ringside-ca"), "show",
                                os.path.join(cert_dir, "cert.pem")],
                               capture_output=True, text=True, timeout=20)
        self.assertIn(f"uri sans:   {self.APP_ID}", shown.stdout)
        self.assertIn(f"dns sans:   {SERVICE}", shown.stdout)
        text = subprocess.run([self.openssl, "x509", "-noout", "-ext", "subjectAltName", "-in",
                               os.path.join(cert_dir, "cert.pem")],
                              capture_output=True, text=True, timeout=20).stdout
        self.assertIn(f"DNS:{SERVICE}", text)
        self.assertIn(f"URI:{self.APP_ID}", text)

    def egress_round_trip(self, ingress_port, options):
        egress, port = self.start_egress([ingress_port], self.ca, options=options)
        sock = harness.connect(port)
        try:
            sock.sendall(b"MARKER\n")
            sock.shutdown(1)
            data, _ = harness.read_until_closed(sock, timeout=10)
        finally:
            sock.close()
        return egress, port, data

    def test_egress_requires_the_spiffe_id(self):
        app = self.start_recording_app(echo=True)
        _, ingress_port, _ = self.start_issuing_ingress(app.port)
        _, _, data = self.egress_round_trip(ingress_port, f"spiffe-id={self.APP_ID}")
        self.assertEqual(data, b"MARKER\n")
        _, _, data = self.egress_round_trip(ingress_port, f"san=none,spiffe-id={self.APP_ID}")
        self.assertEqual(data, b"MARKER\n")
        self.assertEqual(app.total_bytes(), 14)

    def test_egress_refuses_a_wrong_spiffe_id_before_any_byte(self):
        app = self.start_recording_app(echo=True)
        _, ingress_port, _ = self.start_issuing_ingress(app.port)
        egress, port, data = self.egress_round_trip(ingress_port,
                                                    f"spiffe-id={TD}/ns/prod/sa/payments")
        self.assertEqual(data, b"")
        label = listener_label("egress", port)
        self.assert_stat_moves(egress, "ringside_listener_tls_verify_failure_total", label, 0)
        self.assertTrue(harness.wait_until(
            lambda: "URI SAN mismatch: wanted spiffe://example.org/ns/prod/sa/payments, have "
                    f"[{self.APP_ID}]" in egress.stderr_text(), timeout=5), egress.stderr_text())
        self.assertEqual(app.total_bytes(), 0)
        doc = json.loads(egress.admin_request("GET", "/authz")[1])
        self.assertEqual(doc["egress"][0]["spiffe_id"], f"{TD}/ns/prod/sa/payments")


class BadInputTest(AuthzCase):
    def test_one_line_exit_2(self):
        for options, extra, message in [
                ("allow=orders..ns", [], "identity pattern 'orders..ns'"),
                ("protocol=http", ["--authz-rule", "127.0.0.1:1,allow=a.ns"],
                 "no --ingress listens on '127.0.0.1:1'")]:
            argv = [harness.binary("ringside"), "--service-name", SERVICE, "--cert", self.cert,
                    "--key", self.key, "--trust", self.ca, "--ingress",
                    f"{LOOPBACK}:{harness.free_port()}={LOOPBACK}:1,client-cert=require,{options}",
                    *extra]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            self.assertEqual(done.returncode, 2, done.stderr)
            self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
            self.assertIn(message, done.stderr)
        argv = [harness.binary("ringside"), "--service-name", SERVICE, "--cert", self.cert,
                "--key", self.key, "--ingress",
                f"{LOOPBACK}:{harness.free_port()}={LOOPBACK}:1,allow=a.ns"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        self.assertEqual(done.returncode, 2)
        self.assertIn("allow needs client-cert=require", done.stderr)


if __name__ == "__main__":
    harness.main()
