#!/usr/bin/env python3
"""ECS Service Connect on one machine: three tasks in network namespaces, each app with a
ringside sidecar, joined by veth pairs to a bridge that lives in a fourth namespace.

  client task  (ns CLIENT)   curl / load -> 127.255.0.1:80 (egress, client alias)
       |  veth, 10.77.0.1                   /etc/hosts: `ringside hosts` output
       |                                    resolv.conf -> dnsmasq on 127.0.0.1 (same ns)
  bridge (ns NET)   <- tshark captures every port: no plaintext may cross
       |  veth, 10.77.0.11 / 10.77.0.12
  replica-1, replica-2 (ns REP1, REP2)   ingress 0.0.0.0:15443 (mTLS) -> app on 127.0.0.1:8080

The client sidecar finds the replicas through `--upstream app.sample-namespace=
dns:replicas.app.sample-namespace:15443`, answered by dnsmasq from a hosts file the
scenario rewrites while load runs (replica-2 added, replica-1 removed and drained, added
back); then replica-2's sidecar is killed mid-load. See docs/service-connect.md.

Run it through tools/service-connect-demo (as root). --report FILE writes the figures as
JSON (the integration test asserts on them). Everything is torn down on exit.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVICE = "app.sample-namespace"
CLIENT_SERVICE = "client.sample-namespace"
DNS_NAME = "replicas." + SERVICE
ALIAS = "127.255.0.1"
SUBNET = "10.77.0"
CLIENT_IP = f"{SUBNET}.1"
REPLICA_IPS = {"replica-1": f"{SUBNET}.11", "replica-2": f"{SUBNET}.12"}
INGRESS_PORT = 15443
ADMIN = "127.0.0.1:9901"
MARKERS = ("RS-RESPONSE-MARKER-5b1c", "RS-REQUEST-MARKER-9e2d")
# The sidecars' listener protocol (--protocol overrides it).
PROTOCOL = "http"
# Long requests started just before replica-1 leaves (round robin sends about half there).
SLOW_REQUESTS = 12


def log(text):
    print(text, flush=True)


def step(text):
    log(f"\n== {text}")


class Scenario:
    def __init__(self, args):
        self.args = args
        self.protocol = args.protocol
        tag = f"rsc{os.getpid() % 100000}"
        self.ns = {"client": f"{tag}-client", "replica-1": f"{tag}-rep1",
                   "replica-2": f"{tag}-rep2", "net": f"{tag}-net"}
        self.ports = {"client": f"{tag}c", "replica-1": f"{tag}r1", "replica-2": f"{tag}r2"}
        self.work = tempfile.mkdtemp(prefix="ringside-service-connect.")
        self.procs = []  # (name, Popen), killed in reverse order on exit
        self.sidecars = {}
        self.report = {"protocol": self.protocol, "phases": {}}
        self.bin = {
            "ringside": args.ringside or os.path.join(REPO, "build", "ringside"),
            "ca": args.ca or os.path.join(REPO, "build", "tools", "ca", "ringside-ca"),
        }

    # ---- plumbing ------------------------------------------------------------------------

    def run(self, argv, ns=None, check=True, capture=True, timeout=60):
        if ns is not None:
            argv = ["ip", "netns", "exec", ns] + argv
        result = subprocess.run([str(a) for a in argv], capture_output=capture, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} exited {result.returncode}: "
                               f"{(result.stderr or '').strip()[-400:]}")
        return result

    def spawn(self, name, argv, ns):
        out = open(os.path.join(self.work, f"{name}.log"), "wb")
        proc = subprocess.Popen(["ip", "netns", "exec", ns] + [str(a) for a in argv],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.procs.append((name, proc))
        return proc

    def log_of(self, name):
        with open(os.path.join(self.work, f"{name}.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for(self, what, predicate, timeout=15.0, interval=0.1):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(interval)

    def admin(self, task, path):
        result = self.run(["curl", "-s", "--max-time", "2", f"http://{ADMIN}{path}"],
                          ns=self.ns[task], check=False)
        return result.stdout if result.returncode == 0 else ""

    def clusters(self):
        text = self.admin("client", "/clusters")
        try:
            return json.loads(text)["clusters"][0]
        except (ValueError, KeyError, IndexError):
            return None

    def cluster_addresses(self):
        cluster = self.clusters()
        if cluster is None:
            return None
        return sorted(e["address"] for e in cluster["endpoints"] if e["state"] in ("active", "ejected"))

    def stop_sidecars(self):
        """SIGTERM: each sidecar drains and exits; its status goes into the report."""
        exits = self.report["sidecar_exit"] = {}
        for task, proc in self.sidecars.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for task, proc in self.sidecars.items():
            try:
                exits[task] = proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                exits[task] = "did not exit"

    def cleanup(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    log(f"warning: {name} (pid {proc.pid}) did not exit")
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        if self.args.keep:
            log(f"logs and capture kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---- set-up --------------------------------------------------------------------------

    def make_network(self):
        step("1. three tasks in network namespaces, joined through a bridge in a fourth")
        for ns in self.ns.values():
            self.run(["ip", "netns", "add", ns])
            self.run(["ip", "link", "set", "lo", "up"], ns=ns)
        net = self.ns["net"]
        self.run(["ip", "link", "add", "br0", "type", "bridge"], ns=net)
        self.run(["ip", "link", "set", "br0", "up"], ns=net)
        for task, ip in [("client", CLIENT_IP)] + list(REPLICA_IPS.items()):
            port = self.ports[task]
            self.run(["ip", "link", "add", port, "netns", net, "type", "veth", "peer", "name",
                      "eth0", "netns", self.ns[task]])
            self.run(["ip", "link", "set", port, "master", "br0", "up"], ns=net)
            self.run(["ip", "addr", "add", f"{ip}/24", "dev", "eth0"], ns=self.ns[task])
            self.run(["ip", "link", "set", "eth0", "up"], ns=self.ns[task])
            log(f"  {task:10} netns {self.ns[task]:16} eth0 {ip}/24  <-veth->  {port} on br0")

    def make_certificates(self):
        step("2. a scenario CA and 7-day certificates (ringside-ca)")
        ca = self.bin["ca"]
        self.run([ca, "init", "--out", f"{self.work}/ca"])
        self.run([ca, "issue", "--ca", f"{self.work}/ca", "--san", SERVICE, "--lifetime", "7d",
                  "--out", f"{self.work}/app"])
        self.run([ca, "issue", "--ca", f"{self.work}/ca", "--san", CLIENT_SERVICE, "--lifetime",
                  "7d", "--out", f"{self.work}/client"])
        shown = self.run([ca, "show", f"{self.work}/app/cert.pem"]).stdout
        for line in shown.strip().splitlines():
            log(f"  {line}")

    def client_flags(self):
        return ["--service-name", CLIENT_SERVICE,
                "--egress", f"{ALIAS}:80={SERVICE},protocol={self.protocol}",
                "--upstream", f"{SERVICE}=dns:{DNS_NAME}:{INGRESS_PORT}",
                "--dns-refresh", "1s",
                "--cert", f"{self.work}/client/cert.pem", "--key", f"{self.work}/client/key.pem",
                "--trust", f"{self.work}/ca/ca.pem", "--admin", ADMIN, "--threads", "2"]

    def write_dns(self, replicas):
        """The records dnsmasq serves for the replicas' name; SIGHUP makes it re-read them."""
        path = f"{self.work}/dns-hosts"
        with open(path + ".tmp", "w") as f:
            for replica in replicas:
                f.write(f"{REPLICA_IPS[replica]} {DNS_NAME}\n")
        os.rename(path + ".tmp", path)
        if getattr(self, "dnsmasq", None) is not None:
            self.dnsmasq.send_signal(signal.SIGHUP)

    def start_tasks(self):
        step("3. each replica: its app on 127.0.0.1:8080 and a ringside ingress on :15443 (mTLS)")
        for replica in REPLICA_IPS:
            ns = self.ns[replica]
            self.spawn(f"{replica}-app", [sys.executable, f"{HERE}/replica_app.py", replica], ns)
            self.sidecars[replica] = self.spawn(f"{replica}-ringside", [
                self.bin["ringside"], "--service-name", SERVICE,
                "--ingress", f"0.0.0.0:{INGRESS_PORT}=127.0.0.1:8080,protocol={self.protocol},"
                             "client-cert=require",
                "--cert", f"{self.work}/app/cert.pem", "--key", f"{self.work}/app/key.pem",
                "--trust", f"{self.work}/ca/ca.pem", "--admin", ADMIN, "--threads", "1"], ns)
        for replica in REPLICA_IPS:
            self.wait_for(f"{replica}'s sidecar", lambda r=replica: self.admin(r, "/ready") == "ready\n")
            log(f"  {replica}: app and sidecar ready at {REPLICA_IPS[replica]}:{INGRESS_PORT}")

        step("4. the client task: dnsmasq, /etc/hosts from `ringside hosts`, the egress sidecar")
        ns = self.ns["client"]
        etc = f"/etc/netns/{ns}"
        os.makedirs(etc, exist_ok=True)
        hosts = self.run([self.bin["ringside"], "hosts"] + self.client_flags()).stdout
        with open(f"{etc}/hosts", "w") as f:
            f.write("127.0.0.1 localhost\n" + hosts)
        with open(f"{etc}/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
        log("  ringside hosts " + " ".join(self.client_flags()[:4]) + " ...")
        for line in hosts.strip().splitlines():
            log(f"    {line}")
        self.report["hosts"] = hosts
        self.write_dns(["replica-1"])
        self.dnsmasq = self.spawn("dnsmasq", [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--user=root",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--local-ttl=0",
            f"--addn-hosts={self.work}/dns-hosts", f"--pid-file={self.work}/dnsmasq.pid"], ns)
        self.wait_for("dnsmasq", lambda: DNS_NAME in self.run(
            ["getent", "ahostsv4", DNS_NAME], ns=ns, check=False).stdout)
        log(f"  dnsmasq answers {DNS_NAME} -> {REPLICA_IPS['replica-1']} (replica-1 only, for now)")
        self.sidecars["client"] = self.spawn("client-ringside",
                                             [self.bin["ringside"]] + self.client_flags(), ns)
        self.wait_for("the client sidecar", lambda: self.admin("client", "/ready") == "ready\n")
        self.wait_for("replica-1 in /clusters",
                      lambda: self.cluster_addresses() == [f"{REPLICA_IPS['replica-1']}:{INGRESS_PORT}"])
        log("  client sidecar ready; /clusters: " + self.describe_cluster())

    def describe_cluster(self):
        cluster = self.clusters()
        if cluster is None:
            return "(unavailable)"
        parts = []
        for e in cluster["endpoints"]:
            replica = next((r for r, ip in REPLICA_IPS.items() if e["address"].startswith(ip + ":")), "?")
            extra = f", {e['active_connections']} open" if e["active_connections"] else ""
            parts.append(f"{replica} {e['address']} {e['state']} ({e['source']}{extra})")
        return "; ".join(parts)

    # ---- what a user checks --------------------------------------------------------------

    def check_curl_and_certificate(self):
        step("5. curl http://app.sample-namespace/ in the client task")
        ns = self.ns["client"]
        result = self.run(["curl", "-s", "-i", "--max-time", "5", f"http://{SERVICE}/"], ns=ns)
        for line in result.stdout.strip().splitlines():
            log(f"  {line}")
        self.report["curl"] = result.stdout

        step("6. openssl s_client against replica-1's ingress, from the client task")
        s_client = self.run(
            ["openssl", "s_client", "-connect", f"{REPLICA_IPS['replica-1']}:{INGRESS_PORT}",
             "-servername", SERVICE, "-CAfile", f"{self.work}/ca/ca.pem",
             "-cert", f"{self.work}/client/cert.pem", "-key", f"{self.work}/client/key.pem"],
            ns=ns, check=False, timeout=15)
        pem = s_client.stdout[s_client.stdout.find("-----BEGIN CERTIFICATE-----"):
                              s_client.stdout.find("-----END CERTIFICATE-----") + 25]
        x509 = subprocess.run(["openssl", "x509", "-noout", "-subject", "-issuer", "-startdate",
                               "-enddate", "-ext", "subjectAltName"], input=pem,
                              capture_output=True, text=True)
        verify = next((l.strip() for l in s_client.stdout.splitlines()
                       if "Verify return code" in l), "")
        certificate = x509.stdout.strip()
        for line in certificate.splitlines() + [verify]:
            log(f"  {line.strip()}")
        self.report["certificate"] = certificate
        self.report["certificate_verify"] = verify
        ca_subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in",
                                     f"{self.work}/ca/ca.pem"], capture_output=True, text=True)
        self.report["ca_subject"] = ca_subject.stdout.strip()

    def start_capture(self):
        net = self.ns["net"]
        argv = ["tshark", "-q", "-w", f"{self.work}/between-namespaces.pcapng"]
        for port in self.ports.values():
            argv += ["-i", port]
        self.tshark = self.spawn("tshark", argv, net)
        # The control: replica-1's loopback (sidecar -> app) carries the same markers in
        # clear, so a search that finds nothing between namespaces is not a blind one.
        self.tshark_lo = self.spawn("tshark-lo", ["tshark", "-q", "-i", "lo", "-f",
                                                  "tcp port 8080", "-w",
                                                  f"{self.work}/replica-1-loopback.pcapng"],
                                    self.ns["replica-1"])
        for name in ("tshark", "tshark-lo"):
            self.wait_for(f"{name} to capture", lambda n=name: "Capturing on" in self.log_of(n),
                          timeout=30)

    def stop_capture(self):
        for proc in (self.tshark, self.tshark_lo):
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)

    def analyse_capture(self, path):
        """One tshark pass: frames and bytes in all, in TLS records, and carrying a marker."""
        marker_filter = " || ".join(f'frame contains "{m}"' for m in MARKERS)
        stat = f"io,stat,0,frame,tls,{marker_filter}"
        out = subprocess.run(["tshark", "-r", path, "-q", "-z", stat], capture_output=True,
                             text=True, timeout=300).stdout
        # The one interval row: "|  0.0 <> 26.3 |  221913 | 42480379 |  49158 | ... |"
        row = next(l for l in out.splitlines() if "<>" in l)
        numbers = [int(cell) for cell in row.strip("| \n").split("|")[1:] if cell.strip()]
        if len(numbers) != 6:
            raise RuntimeError(f"unexpected tshark statistics: {row!r}")
        return {"frames": numbers[0], "bytes": numbers[1], "tls_frames": numbers[2],
                "plaintext_frames": numbers[4], "plaintext_bytes": numbers[5]}

    # ---- load and changes ----------------------------------------------------------------

    def phase(self, name, seconds, note):
        start = time.time()
        log(f"  [{name}] {note}")
        time.sleep(seconds)
        self.report["phases"][name] = {"start": start, "end": time.time(), "note": note}

    def change_replicas(self, replicas, expect):
        self.write_dns(replicas)
        wanted = sorted(f"{REPLICA_IPS[r]}:{INGRESS_PORT}" for r in expect)
        self.wait_for("the endpoint set to change", lambda: self.cluster_addresses() == wanted,
                      timeout=15)

    def run_load(self):
        step(f"7. load: {self.args.concurrency} clients in the client task, one connection per request")
        self.start_capture()
        ns = self.ns["client"]
        self.load = self.spawn("load", [sys.executable, f"{HERE}/load.py", f"http://{SERVICE}/",
                                        self.args.concurrency, f"{self.work}/requests.jsonl"], ns)
        self.wait_for("the load to start", lambda: "load running" in self.log_of("load"))
        p = self.args.phase
        self.phase("A", p, "replica-1 only")

        self.change_replicas(["replica-1", "replica-2"], ["replica-1", "replica-2"])
        log(f"    dnsmasq now answers both; /clusters: {self.describe_cluster()}")
        self.phase("B", p, "replica-2 added through DNS: round robin over both")

        # Long requests in flight when replica-1 leaves: they must finish on it.
        slow = []
        for i in range(SLOW_REQUESTS):
            slow.append(self.spawn(f"slow-{i}", ["curl", "-s", "--max-time", "20",
                                                 f"http://{SERVICE}/slow?ms={int(p * 1000)}"], ns))
        time.sleep(0.5)
        self.change_replicas(["replica-2"], ["replica-2"])
        draining = self.describe_cluster()
        log(f"    replica-1 removed from DNS; /clusters: {draining}")
        self.report["draining_seen"] = "draining" in draining
        self.phase("C", p, "replica-1 removed: new connections go to replica-2, old ones drain")
        slow_results = []
        for i, proc in enumerate(slow):
            proc.wait(timeout=30)
            slow_results.append(self.log_of(f"slow-{i}").split(" ", 1)[0] or "failed")
        self.report["slow_requests"] = slow_results
        log(f"    the {len(slow)} long requests started before the removal ended with: "
            f"{', '.join(slow_results)}")
        log(f"    /clusters after they finished: {self.describe_cluster()}")

        self.change_replicas(["replica-1", "replica-2"], ["replica-1", "replica-2"])
        self.phase("D", p, "replica-1 back: both again")

        kill_at = time.time()
        self.sidecars["replica-2"].kill()
        self.report["kill_time"] = kill_at
        log("    replica-2's sidecar killed (SIGKILL)")
        self.phase("E", p + 2, "replica-2's sidecar gone: traffic continues on replica-1")
        log(f"    /clusters: {self.describe_cluster()}")
        self.report["clusters_after_kill"] = self.clusters()

        self.load.send_signal(signal.SIGTERM)
        self.load.wait(timeout=30)
        self.stop_capture()

    # ---- figures ----------------------------------------------------------------------------

    def figures(self):
        requests = []
        with open(f"{self.work}/requests.jsonl") as f:
            for line in f:
                requests.append(json.loads(line))
        phases = self.report["phases"]
        kill_at = self.report["kill_time"]

        def count(selected):
            by = {"replica-1": 0, "replica-2": 0}
            failed = 0
            for r in selected:
                if r["ok"]:
                    by[r["replica"]] = by.get(r["replica"], 0) + 1
                else:
                    failed += 1
            return {"sent": len(selected), "failed": failed, **by}

        # A request belongs to the phase it started in, except that those still in flight
        # when replica-2's sidecar is killed belong to the kill's phase (E).
        for name, phase in phases.items():
            phase.update(count([r for r in requests
                                if (phase["start"] <= r["start"] < phase["end"] and
                                    not r["start"] <= kill_at < r["end"]) or
                                (name == "E" and r["start"] <= kill_at < r["end"])]))
        totals = count(requests)
        self.report["totals"] = totals
        self.report["before_kill"] = count([r for r in requests if r["end"] < kill_at])
        in_flight = [r for r in requests if r["start"] <= kill_at < r["end"]]
        self.report["in_flight_at_kill"] = len(in_flight)
        self.report["failed_around_kill"] = sum(1 for r in requests
                                                if not r["ok"] and r["end"] >= kill_at)
        settled = kill_at + 0.5
        self.report["after_kill"] = count([r for r in requests if r["start"] >= settled])
        self.report["errors"] = sorted({r["error"] for r in requests if not r["ok"]})[:10]

        step("8. packet capture on the veth links (tshark on every bridge port)")
        between = self.analyse_capture(f"{self.work}/between-namespaces.pcapng")
        control = self.analyse_capture(f"{self.work}/replica-1-loopback.pcapng")
        self.report["capture"] = between
        self.report["control_capture"] = control
        log(f"  between namespaces: {between['frames']} frames, {between['bytes']} bytes, "
            f"{between['tls_frames']} of them TLS")
        log(f"  frames carrying the request or response marker: {between['plaintext_frames']}")
        log(f"  control, replica-1 loopback (sidecar -> app): {control['plaintext_frames']} "
            f"frames with the markers in clear")

        step("what this shows")
        log(f"  requests sent: {totals['sent']}, failed: {totals['failed']}, answered by "
            f"replica-1: {totals['replica-1']}, replica-2: {totals['replica-2']}")
        for name, phase in phases.items():
            log(f"    phase {name} ({phase['note']}): sent {phase['sent']}, failed "
                f"{phase['failed']}, replica-1 {phase['replica-1']}, replica-2 {phase['replica-2']}")
        log(f"  replica-2's sidecar killed: {self.report['in_flight_at_kill']} requests were in "
            f"flight, {self.report['failed_around_kill']} failed; after it: "
            f"{self.report['after_kill']['replica-1']} answered by replica-1, "
            f"{self.report['after_kill']['replica-2']} by replica-2, "
            f"{self.report['after_kill']['failed']} failed")
        if self.report["errors"]:
            log(f"  failures seen: {'; '.join(self.report['errors'])}")
        cert = "; ".join(l.strip() for l in self.report["certificate"].splitlines()
                         if l.strip() and not l.startswith("X509v3"))
        log(f"  certificate seen: {cert}")
        log(f"  capture verdict: plaintext bytes found between namespaces: "
            f"{between['plaintext_bytes']} ({between['tls_frames']} TLS frames; the control "
            f"found the markers in {control['plaintext_frames']} loopback frames)")

    def main(self):
        started = time.monotonic()
        timings = self.report["step_seconds"] = {}
        try:
            for stage in (self.make_network, self.make_certificates, self.start_tasks,
                          self.check_curl_and_certificate, self.run_load, self.figures):
                t = time.monotonic()
                stage()
                timings[stage.__name__] = round(time.monotonic() - t, 1)
            self.stop_sidecars()
            log(f"  sidecars stopped with SIGTERM, exit status: {self.report['sidecar_exit']}")
            self.report["seconds"] = round(time.monotonic() - started, 1)
            log(f"\nservice-connect: done in {self.report['seconds']} s (" +
                ", ".join(f"{k} {v} s" for k, v in timings.items()) + ")")
        except Exception:
            for name, _ in self.procs:
                if "ringside" in name:
                    log(f"--- {name} log (tail)\n" + "\n".join(self.log_of(name).splitlines()[-15:]))
            raise
        finally:
            if self.args.report:
                with open(self.args.report, "w") as f:
                    json.dump(self.report, f, indent=1)
            self.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default=PROTOCOL, choices=["tcp", "http"],
                        help=f"protocol of the sidecar listeners (default {PROTOCOL})")
    parser.add_argument("--phase", type=float, default=4.0, help="seconds per load phase")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--report", help="write the figures as JSON to this file")
    parser.add_argument("--ringside", help="path of the ringside binary")
    parser.add_argument("--ca", help="path of the ringside-ca binary")
    parser.add_argument("--keep", action="store_true", help="keep logs and captures")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("service-connect: needs root (network namespaces, veth, packet capture)")
    missing = [t for t in ("ip", "tshark", "dnsmasq", "curl", "openssl") if shutil.which(t) is None]
    if missing:
        sys.exit(f"service-connect: missing {', '.join(missing)} (run tools/setup.sh)")
    scenario = Scenario(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    scenario.main()


if __name__ == "__main__":
    main()
