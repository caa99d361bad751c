"""Shared machinery for the ringside integration tests.

The tests run the real binaries (ringside, ringside-ca, ringside-bench) against real
peers (curl, openssl s_client/s_server, Python's ssl module) on 127.0.0.1. Everything a
test starts is registered for cleanup, so a failing test still kills its processes and
removes its temporary directory; on failure the tail of every process's output is
printed, because that is where the explanation usually is.

Binaries are found through RINGSIDE_BIN, RINGSIDE_CA_BIN and RINGSIDE_BENCH_BIN, or under
RINGSIDE_BUILD_ROOT (meson sets it); a missing binary is a test error, never a skip.
Python standard library only.
"""

import ast
import contextlib
import hashlib
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SERVICE = "app.sample-namespace"
CLIENT_SERVICE = "client.sample-namespace"
LOOPBACK = "127.0.0.1"

# meson's convention for "this test did not run here".
EXIT_SKIP = 77

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BINARIES = {
    # name: (environment override, path under the build root)
    "ringside": ("RINGSIDE_BIN", "ringside"),
    "ringside-ca": ("RINGSIDE_CA_BIN", os.path.join("tools", "ca", "ringside-ca")),
    "ringside-bench": ("RINGSIDE_BENCH_BIN", os.path.join("bench", "loadgen", "ringside-bench")),
}


def build_root():
    return os.environ.get("RINGSIDE_BUILD_ROOT", os.path.join(_REPO_ROOT, "build"))


def binary(name):
    """Path of one of the project's binaries; raises (an error, not a skip) if absent."""
    env_name, relative = _BINARIES[name]
    path = os.environ.get(env_name) or os.path.join(build_root(), relative)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(
            f"{name} binary not found at {path} (build it, or set {env_name} / "
            f"RINGSIDE_BUILD_ROOT)")
    return path


def require_tool(name):
    """Path of an external tool (not one of ours). When it is missing the calling test
    skips, except under CI=true for a tool tools/setup.sh installs (tools/packages.txt):
    there a missing tool means the machine is not set up, which is a failure."""
    path = shutil.which(name)
    if path is not None:
        return path
    if os.environ.get("CI") == "true" and name in setup_tools():
        raise AssertionError(f"{name} is not installed, but tools/setup.sh installs it "
                             f"(tools/packages.txt) and CI=true: a failure, not a skip")
    raise unittest.SkipTest(f"{name} is not installed")


def require_bench_script(script):
    """What every bench/ script's smoke test needs: two CPUs (the proxy on one, the load
    on the other; else the test skips), taskset, and ringside, ringside-bench and
    ringside-ca built (a missing binary fails, never builds)."""
    if (os.cpu_count() or 1) < 2:
        raise unittest.SkipTest(f"{script} needs two CPUs")
    require_tool("taskset")
    for name in ("ringside", "ringside-bench", "ringside-ca"):
        binary(name)


def missing_python_package(package):
    """A python3-* package tools/setup.sh installs could not be imported by this
    interpreter: the calling test skips, except under CI=true, where it fails (the
    machine is not set up)."""
    if os.environ.get("CI") == "true":
        raise AssertionError(f"{package} cannot be imported by {sys.executable}, but "
                             f"tools/setup.sh installs it and CI=true: a failure, not a skip")
    raise unittest.SkipTest(f"{package} is not importable by {sys.executable}")


def setup_tools(packages_file=os.path.join(_REPO_ROOT, "tools", "packages.txt")):
    """The commands tools/setup.sh installs: what follows the package name on each line
    of tools/packages.txt."""
    tools = set()
    with open(packages_file) as f:
        for line in f:
            tools.update(line.split("#", 1)[0].split()[1:])
    return tools


_handed_out = set()


def free_port():
    """A port that was free a moment ago, and not handed out before by this process: the
    kernel may give the same ephemeral port to two binds in a row (an admin port once
    equalled the listener port picked just before it), so the race left is with other
    processes only."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port that was not handed out already")


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate until it returns a true value; returns it, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# Processes


class Process:
    """A child process whose stdout and stderr go to files (no pipe can fill up)."""

    def __init__(self, name, argv, workdir, env=None, nofile=None, stdin=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.out_path = os.path.join(workdir, f"{name}.out")
        self.err_path = os.path.join(workdir, f"{name}.err")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        preexec = None
        if nofile is not None:
            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.popen = subprocess.Popen(
            self.argv, stdout=self._out, stderr=self._err,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            env=env, preexec_fn=preexec, cwd=workdir)
        self.pid = self.popen.pid

    def poll(self):
        return self.popen.poll()

    def wait(self, timeout):
        """Exit status, or None if still running after timeout seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum):
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def stop(self):
        """Kills the process (by its own pid) if it still runs, and closes its files."""
        if self.popen.poll() is None:
            self.popen.kill()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.popen.stdin:
            self.popen.stdin.close()
        for f in (self._out, self._err):
            if not f.closed:
                f.close()

    def stdout_text(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr_text(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, lines=40):
        parts = []
        for label, path in (("stdout", self.out_path), ("stderr", self.err_path)):
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            kept = text.splitlines()[-lines:]
            if kept:
                parts.append(f"--- {self.name} {label} (last {len(kept)} lines) ---")
                parts.extend(kept)
        status = self.popen.poll()
        parts.append(f"--- {self.name}: pid {self.pid}, "
                     f"{'running' if status is None else 'exit status ' + str(status)}; "
                     f"argv: {' '.join(self.argv)}")
        return "\n".join(parts)

    def cpu_seconds(self):
        """utime + stime of the process from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # fields 14 and 15 of proc(5)

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))


class Ringside(Process):
    """A running ringside with its admin port."""

    def __init__(self, name, argv, workdir, admin_port, **kwargs):
        super().__init__(name, argv, workdir, **kwargs)
        self.admin_port = admin_port

    def admin_request(self, method, path, timeout=3):
        """(status, body text), or (None, error) when the admin port does not answer."""
        conn = http.client.HTTPConnection(LOOPBACK, self.admin_port, timeout=timeout)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            return None, str(e)
        finally:
            conn.close()

    def ready_status(self):
        return self.admin_request("GET", "/ready")[0]

    def stats(self):
        """Parses /stats (Prometheus text) into {(metric, labels-string): value}."""
        status, body = self.admin_request("GET", "/stats")
        if status != 200:
            raise AssertionError(f"GET /stats answered {status}: {body[:200]}")
        return parse_prometheus(body)

    def stat(self, metric, listener_prefix=None, stats=None):
        """Sum of a metric over the series whose listener label starts with the prefix
        (e.g. "ingress_127.0.0.1:15443"); all series when the prefix is None."""
        if stats is None:
            stats = self.stats()
        total = 0
        found = False
        for (name, labels), value in stats.items():
            if name != metric:
                continue
            if listener_prefix is not None:
                label = re.search(r'listener="([^"]*)"', labels)
                if not label or label.group(1) != listener_prefix:
                    continue
            found = True
            total += value
        if not found:
            raise AssertionError(f"/stats has no series {metric} for listener {listener_prefix}")
        return total


_PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def parse_prometheus(text):
    result = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        result[(m.group(1), m.group(2) or "")] = value
    return result


def listener_label(kind, port):
    return f"{kind}_{LOOPBACK}:{port}"


# ---------------------------------------------------------------------------------------
# Certificates


class Pki:
    """Certificates for a test: made with ringside-ca (the tool users run), and with
    `openssl ca` where a test needs something ringside-ca rightly refuses to make, such
    as a certificate that expired yesterday."""

    def __init__(self, workdir):
        self.workdir = workdir
        self._count = 0

    def _dir(self, label):
        self._count += 1
        path = os.path.join(self.workdir, f"{self._count:02d}-{label}")
        os.makedirs(path)
        return path

    def _run(self, argv):
        done = subprocess.run([str(a) for a in argv], capture_output=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(str(a) for a in argv)} failed with {done.returncode}:\n"
                f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}")
        return done

    def ca(self, label="ca", key_type="ecdsa-p256"):
        """A new CA; returns its directory (ca.pem, ca.key)."""
        out = self._dir(label)
        self._run([binary("ringside-ca"), "init", "--out", out, "--key-type", key_type])
        for name in ("ca.pem", "ca.key"):
            if not os.path.isfile(os.path.join(out, name)):
                raise AssertionError(f"ringside-ca init did not write {name} in {out}")
        return out

    def intermediate(self, parent_dir, label="intermediate", lifetime="365d", cn=None):
        """A subordinate CA under the CA in parent_dir (ringside-ca intermediate); returns
        its directory (ca.pem: the intermediate, then its parents; ca.key)."""
        out = self._dir(label)
        argv = [binary("ringside-ca"), "intermediate", "--ca", parent_dir, "--out", out,
                "--lifetime", lifetime, "--force"]
        if cn:
            argv += ["--cn", cn]
        self._run(argv)
        return out

    def issue(self, ca_dir, sans, label="leaf", key_type="ecdsa-p256", lifetime=None, uris=()):
        """A leaf signed by the CA in ca_dir, with DNS SANs sans and URI SANs uris (SPIFFE
        IDs); returns (cert.pem, key.pem)."""
        out = self._dir(label)
        argv = [binary("ringside-ca"), "issue", "--ca", ca_dir, "--out", out,
                "--key-type", key_type]
        for san in sans:
            argv += ["--san", san]
        for uri in uris:
            argv += ["--uri", uri]
        if lifetime:
            argv += ["--lifetime", lifetime]
        self._run(argv)
        cert, key = os.path.join(out, "cert.pem"), os.path.join(out, "key.pem")
        for path in (cert, key):
            if not os.path.isfile(path):
                raise AssertionError(f"ringside-ca issue did not write {path}")
        return cert, key

    def issue_with_openssl(self, ca_dir, sans, label="openssl-leaf", start=None, end=None,
                           days=7, uris=(), cn=None):
        """A leaf made by `openssl ca`, with explicit validity dates when given
        (YYYYMMDDHHMMSSZ), DNS SANs sans and URI SANs uris (none at all: a CN-only
        certificate, CN cn); returns (cert.pem, key.pem)."""
        require_tool("openssl")
        out = self._dir(label)
        cert, key, csr = (os.path.join(out, n) for n in ("cert.pem", "key.pem", "req.csr"))
        self._run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                   "-subj", f"/CN={cn or (list(sans) + list(uris))[0]}"])
        for name in ("index.txt",):
            open(os.path.join(out, name), "w").close()
        with open(os.path.join(out, "serial"), "w") as f:
            f.write("%032x\n" % int.from_bytes(os.urandom(15), "big"))
        os.makedirs(os.path.join(out, "newcerts"))
        config = os.path.join(out, "ca.cnf")
        with open(config, "w") as f:
            names = [f"DNS:{s}" for s in sans] + [f"URI:{u}" for u in uris]
            text = _OPENSSL_CA_CONFIG.format(dir=out, san=",".join(names))
            if not names:
                text = text.replace("subjectAltName = \n", "")
            f.write(text)
        argv = ["openssl", "ca", "-batch", "-config", config, "-notext",
                "-cert", os.path.join(ca_dir, "ca.pem"), "-keyfile", os.path.join(ca_dir, "ca.key"),
                "-in", csr, "-out", cert, "-extensions", "leaf"]
        if start or end:
            argv += ["-startdate", start, "-enddate", end]
        else:
            argv += ["-days", str(days)]
        self._run(argv)
        return cert, key


_OPENSSL_CA_CONFIG = """
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
serial = {dir}/serial
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
[ any_name ]
commonName = supplied
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = {san}
"""


# ---------------------------------------------------------------------------------------
# Peers written in Python (for what no real program can tell us, e.g. exactly which bytes
# the application received)


class RecordingServer:
    """A TCP server in a thread that records every connection's bytes (count and
    sha256) and, in echo mode, echoes them back and relays the half-close."""

    def __init__(self, echo=True):
        self.echo = echo
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = []  # dicts: bytes, sha256, done
        self._stopping = False
        self._threads = []
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            record = {"bytes": 0, "sha256": hashlib.sha256(), "done": False, "prefix": b""}
            with self.lock:
                self.connections.append(record)
            t = threading.Thread(target=self._serve, args=(conn, record), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn, record):
        conn.settimeout(120)
        try:
            while True:
                data = conn.recv(256 * 1024)
                if not data:
                    break
                with self.lock:
                    record["bytes"] += len(data)
                    record["sha256"].update(data)
                    if len(record["prefix"]) < 256:
                        record["prefix"] += data[:256 - len(record["prefix"])]
                if self.echo:
                    conn.sendall(data)
            if self.echo:
                conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            with self.lock:
                record["done"] = True
            conn.close()

    def total_bytes(self):
        with self.lock:
            return sum(c["bytes"] for c in self.connections)

    def connection_count(self):
        with self.lock:
            return len(self.connections)

    def close(self):
        self._stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def connect(port, timeout=10):
    s = socket.create_connection((LOOPBACK, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_closed(sock, timeout):
    """Reads until EOF, a reset or the timeout. Returns (data, ending) where ending is
    "eof", "reset" or "timeout"."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), "timeout"
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), "timeout"
        except (ConnectionResetError, BrokenPipeError):
            return b"".join(chunks), "reset"
        if not data:
            return b"".join(chunks), "eof"
        chunks.append(data)


def echo_round_trip(port, payload, timeout=20):
    """Sends payload to port from one thread while reading from another, then half-closes;
    returns (received bytes count, sha256 hex of received, ending)."""
    sock = connect(port, timeout=timeout)
    errors = []

    def send():
        try:
            view = memoryview(payload)
            for offset in range(0, len(view), 256 * 1024):
                sock.sendall(view[offset:offset + 256 * 1024])
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    digest = hashlib.sha256()
    received = 0
    ending = "eof"
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                ending = "timeout"
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(256 * 1024)
            except socket.timeout:
                ending = "timeout"
                break
            except ConnectionResetError:
                ending = "reset"
                break
            if not data:
                break
            received += len(data)
            digest.update(data)
    finally:
        sender.join(timeout=5)
        sock.close()
    if errors:
        ending += f" (send error: {errors[0]})"
    return received, digest.hexdigest(), ending


def tls_client_context(ca_file, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls_echo(port, ca_file, payload=b"ping", server_name=SERVICE, cert=None, key=None,
             timeout=10):
    """Direct TLS client to an ingress: sends payload, half-closes at the TLS layer is not
    possible in Python, so it reads exactly len(payload) bytes back."""
    ctx = tls_client_context(ca_file, cert, key)
    with connect(port, timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(payload)
            got = b""
            while len(got) < len(payload):
                data = tls.recv(65536)
                if not data:
                    break
                got += data
            return got


@contextlib.contextmanager
def draining(proc, port, ca_file, server_name=SERVICE):
    """Opens a TLS connection through proc's ingress (one echoed ping), then asks proc
    to drain (POST /drain): inside the block proc is draining, kept so by the open
    connection, which is closed when the block ends."""
    ctx = tls_client_context(ca_file)
    with connect(port) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(b"ping")
            if tls.recv(4) != b"ping":
                raise AssertionError("no echo through the ingress before the drain")
            status, body = proc.admin_request("POST", "/drain")
            if status not in (200, 202):
                raise AssertionError(f"POST /drain answered {status} {body}")
            yield tls


def client_hello_bytes(server_name=SERVICE):
    """The bytes of a real ClientHello (from Python's OpenSSL), without any socket."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def http_get(port, path="/", timeout=10, host="localhost"):
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------
# The test case base


class IntegrationCase(unittest.TestCase):
    """Gives each test a temporary directory, process and server registries cleaned up
    whatever happens, and helpers to start the binaries."""

    # Set by subclasses' setUpClass when they share certificates across their tests.
    pki_dir = None

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="ringside-integ-")
        self.processes = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not getattr(outcome, "success", True)
        for proc in self.processes:
            proc.stop()
        if failed:
            sys.stderr.write(f"\n===== diagnostics for {self.id()} =====\n{self.diag()}\n")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def diag(self):
        return "\n".join(p.tail() for p in self.processes)

    def start(self, name, argv, **kwargs):
        proc = Process(name, argv, self.workdir, **kwargs)
        self.processes.append(proc)
        return proc

    def fail_with_diag(self, message):
        self.fail(f"{message}\n{self.diag()}")

    # -- applications ---------------------------------------------------------------

    def _start_bench_serve(self, name, extra):
        proc = self.start(name, [binary("ringside-bench"), "serve", f"{LOOPBACK}:0", *extra])
        found = wait_until(lambda: re.search(r"listening on [0-9.]+:(\d+)", proc.stdout_text())
                           or proc.poll() is not None, timeout=10)
        match = re.search(r"listening on [0-9.]+:(\d+)", proc.stdout_text())
        if not found or not match:
            self.fail_with_diag(f"{name} did not report its port")
        return int(match.group(1))

    def start_echo_app(self, name="echo-app"):
        """ringside-bench serve --echo: TCP echo that relays the half-close."""
        return self._start_bench_serve(name, ["--echo"])

    def start_http_app(self, name="http-app", body_size=None):
        """ringside-bench serve: the HTTP/1.1 hello upstream."""
        extra = ["--body-size", str(body_size)] if body_size is not None else []
        return self._start_bench_serve(name, extra)

    def start_recording_app(self, echo=True):
        server = RecordingServer(echo=echo)
        self.addCleanup(server.close)
        return server

    # -- ringside ---------------------------------------------------------------------

    def start_ringside(self, args, name="ringside", wait_ready=True, nofile=None, threads=2):
        admin_port = free_port()
        argv = [binary("ringside"), "--admin", f"{LOOPBACK}:{admin_port}",
                "--threads", str(threads), *args]
        proc = Ringside(name, argv, self.workdir, admin_port, nofile=nofile)
        self.processes.append(proc)
        if wait_ready:
            ok = wait_until(lambda: proc.poll() is not None or proc.ready_status() == 200,
                            timeout=15, interval=0.05)
            if proc.poll() is not None:
                self.fail_with_diag(f"{name} exited during start-up")
            if not ok:
                self.fail_with_diag(f"{name}: GET /ready did not answer 200 within 15 s")
        else:
            # The admin endpoint answers 503 "starting" until its routes exist: wait until
            # /stats is served, so that the caller's first stat() reads real series.
            ok = wait_until(lambda: proc.poll() is not None or
                            proc.admin_request("GET", "/stats")[0] == 200,
                            timeout=15, interval=0.05)
            if not ok and proc.poll() is None:
                self.fail_with_diag(f"{name}: GET /stats did not answer 200 within 15 s")
        return proc

    def start_ingress(self, app_port, cert, key, trust=None, client_cert=None, extra=(),
                      name="ingress", options="", **kwargs):
        """A ringside terminating TLS for SERVICE in front of app_port; options are more
        listener keys ("protocol=http"). Returns (process, ingress port)."""
        port = free_port()
        spec = f"{LOOPBACK}:{port}={LOOPBACK}:{app_port}"
        if client_cert:
            spec += f",client-cert={client_cert}"
        if options:
            spec += f",{options}"
        args = ["--service-name", SERVICE, "--ingress", spec, "--cert", cert, "--key", key]
        if trust:
            args += ["--trust", trust]
        proc = self.start_ringside(args + list(extra), name=name, **kwargs)
        return proc, port

    def start_egress(self, upstream_ports, trust, cert=None, key=None, service=SERVICE,
                     options="", extra=(), name="egress", **kwargs):
        """A ringside accepting plaintext and originating TLS to service's endpoints
        (127.0.0.1:upstream_ports). Returns (process, egress port)."""
        port = free_port()
        spec = f"{LOOPBACK}:{port}={service}" + (f",{options}" if options else "")
        args = ["--egress", spec, "--trust", trust]
        for upstream in upstream_ports:
            args += ["--upstream", f"{service}={LOOPBACK}:{upstream}"]
        if cert:
            args += ["--cert", cert, "--key", key]
        proc = self.start_ringside(args + list(extra), name=name, **kwargs)
        return proc, port

    def assert_stat_moves(self, proc, metric, listener, before, minimum=1, timeout=5):
        """Waits for a counter to reach before + minimum (counters are merged by the admin
        thread, so a fresh value may lag the event by a moment)."""
        last = [before]

        def moved():
            last[0] = proc.stat(metric, listener)
            return last[0] >= before + minimum

        if not wait_until(moved, timeout=timeout, interval=0.1):
            self.fail_with_diag(f"{metric}{{listener={listener}}} went from {before} to "
                                f"{last[0]}, expected +{minimum}")


# ---------------------------------------------------------------------------------------
# Running a test file and reporting what ran

# The line every test program of the suite prints last (harness.main here,
# tests/gtest_main.cc, bench/micro/benchmark_main.cc); tools/test.sh adds them up.
COUNTS_PREFIX = "ringside-test-counts:"


def report_counts(passed, failed, skipped):
    print(f"{COUNTS_PREFIX} {passed} passed, {failed} failed, {skipped} skipped", flush=True)


class CountingResult(unittest.TextTestResult):
    """Remembers the outcome of each test ("passed", "failed", "skipped"), and of the
    class and module fixtures (setUpClass...) apart, to count test cases afterwards."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}  # test id -> outcome; a failure wins over what came before
        self.fixture_outcomes = []  # (description, outcome) of setUpClass and friends
        self.loaded = []  # every test case the run was given (set by _CountingRunner)

    def _record(self, test, outcome):
        if isinstance(test, unittest.case._SubTest):
            test = test.test_case
        if not isinstance(test, unittest.TestCase):  # a fixture's _ErrorHolder
            self.fixture_outcomes.append((test.id(), outcome))
        elif outcome == "failed" or test.id() not in self.outcomes:
            self.outcomes[test.id()] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "failed")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._record(test, "failed")

    def count(self):
        """(passed, failed, skipped) over the test cases that were loaded. A test
        that did not run counts as skipped when its class or module fixture skipped, else
        as failed; a failed fixture of tests that did run (tearDownClass) adds a failure."""
        totals = {"passed": 0, "failed": 0, "skipped": 0}
        for test in self.loaded:
            outcome = self.outcomes.get(test.id())
            if outcome is None:
                cls = type(test)
                owners = (f"({cls.__module__}.{cls.__qualname__})", f"({cls.__module__})")
                fixture = [o for d, o in self.fixture_outcomes if d.endswith(owners)]
                outcome = "skipped" if fixture and "failed" not in fixture else "failed"
            totals[outcome] += 1
        if not self.wasSuccessful():
            totals["failed"] = max(totals["failed"], 1)
        return totals["passed"], totals["failed"], totals["skipped"]


class _CountingRunner(unittest.TextTestRunner):
    resultclass = CountingResult

    def run(self, test):
        loaded = list(_flatten(test))  # a suite forgets its tests as they run
        result = super().run(test)
        result.loaded = loaded
        return result


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


def _class_definitions(statements):
    """The class statements of a module body, also those under if/try/with blocks."""
    for node in statements:
        if isinstance(node, ast.ClassDef):
            yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from _class_definitions(getattr(node, field, []))


def _test_methods(node):
    return [n for n in node.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")]


def unrun_test_classes(module, main_line=None):
    """What in module's source defines tests that cannot run: (problem, number of tests)
    pairs. A test class (a TestCase subclass, or a class with test* methods) that the
    module does not hold when the tests run (defined below the __main__ guard, which
    exits first), a test class defined twice (the second hides the first), a test
    method defined twice in a class. Read from the source with ast, since a class
    below the guard never exists as an object."""
    path = getattr(module, "__file__", None)
    if not path or not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    by_name = {}
    for node in _class_definitions(tree.body):
        by_name.setdefault(node.name, []).append(node)

    def is_test_class(node, seen):
        if _test_methods(node):
            return True
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in by_name:
                if base.id not in seen and any(is_test_class(b, seen | {base.id})
                                               for b in by_name[base.id]):
                    return True
                continue
            try:
                value = eval(compile(ast.Expression(base), path, "eval"), vars(module))
            except Exception:  # not resolvable now: decided by the other bases
                continue
            if isinstance(value, type) and issubclass(value, unittest.TestCase):
                return True
        return False

    name = os.path.basename(path)
    problems = []
    for class_name, nodes in by_name.items():
        for node in nodes:
            if not is_test_class(node, {class_name}):
                continue
            tests = max(len(_test_methods(node)), 1)
            live = vars(module).get(class_name)
            if len(nodes) > 1:
                lines = ", ".join(str(n.lineno) for n in nodes)
                if node is not nodes[-1]:
                    problems.append((f"{name}:{node.lineno}: class {class_name} is defined "
                                     f"again (lines {lines}); the last one hides this one",
                                     tests))
            elif not (isinstance(live, type) and live.__module__ == module.__name__):
                where = (f"below the harness.main() call at line {main_line}"
                         if main_line is not None and node.lineno > main_line
                         else "where it is not executed")
                problems.append((f"{name}:{node.lineno}: test class {class_name} is defined "
                                 f"{where}, so its tests never run (the "
                                 f"`if __name__ == \"__main__\":` guard belongs at the end "
                                 f"of the file)", tests))
            seen = {}
            for method in _test_methods(node):
                if method.name in seen:
                    problems.append((f"{name}:{method.lineno}: {class_name}.{method.name} "
                                     f"is defined again (line {seen[method.name]} first); "
                                     f"only the last definition runs", 1))
                seen.setdefault(method.name, method.lineno)
    return problems


def main():
    """Runs the calling module's tests and exits: 0 when tests ran and none failed, 1 on a
    failure, 77 (meson's skip) when every test skipped. Prints the counts of test cases
    passed, failed and skipped as its last line (COUNTS_PREFIX; tools/test.sh adds them
    up), so a partial skip is seen. A file that defines test classes that cannot run
    (unrun_test_classes) fails, its unrun tests counted as failures; so does a file that
    ran no test at all."""
    module = sys.modules["__main__"]
    frame, main_line = sys._getframe(1), None
    while frame is not None:
        if frame.f_globals is vars(module):
            main_line = frame.f_lineno
            break
        frame = frame.f_back
    program = unittest.main(module="__main__", exit=False, verbosity=2,
                            testRunner=_CountingRunner)
    passed, failed, skipped = program.result.count()
    for problem, tests in unrun_test_classes(module, main_line):
        sys.stderr.write(f"harness: FAIL: {problem}\n")
        failed += tests
    if passed + failed + skipped == 0:
        sys.stderr.write("harness: FAIL: no test ran\n")
        failed = 1
    sys.stderr.flush()
    report_counts(passed, failed, skipped)
    if failed:
        sys.exit(1)
    sys.exit(EXIT_SKIP if passed == 0 else 0)


def shared_pki():
    """Module-level certificates most tests use: an ECDSA CA, a server certificate for
    SERVICE and a client certificate for CLIENT_SERVICE. Returns (tmpdir, dict)."""
    workdir = tempfile.mkdtemp(prefix="ringside-integ-pki-")
    try:
        pki = Pki(workdir)
        ca = pki.ca()
        server_cert, server_key = pki.issue(ca, [SERVICE], label="server")
        client_cert, client_key = pki.issue(ca, [CLIENT_SERVICE], label="client")
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return workdir, {
        "pki": pki,
        "ca_dir": ca,
        "ca": os.path.join(ca, "ca.pem"),
        "cert": server_cert,
        "key": server_key,
        "client_cert": client_cert,
        "client_key": client_key,
    }


class PkiCase(IntegrationCase):
    """An IntegrationCase whose tests share one set of certificates (made once per
    class): self.ca, self.cert/self.key for SERVICE, self.client_cert/self.client_key."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki_dir, material = shared_pki()
        for name, value in material.items():
            setattr(cls, name, value)

    @classmethod
    def tearDownClass(cls):
        if cls.pki_dir:
            shutil.rmtree(cls.pki_dir, ignore_errors=True)
        super().tearDownClass()

    def start_chain(self, app_port, ingress_extra=(), egress_extra=(), client_cert=None,
                    egress_with_cert=False):
        """egress ringside -> ingress ringside -> app, as two sidecars would run. Returns
        (ingress process, ingress port, egress process, egress port)."""
        ingress, ingress_port = self.start_ingress(
            app_port, self.cert, self.key, trust=self.ca if client_cert else None,
            client_cert=client_cert, extra=ingress_extra)
        egress, egress_port = self.start_egress(
            [ingress_port], self.ca,
            cert=self.client_cert if egress_with_cert else None,
            key=self.client_key if egress_with_cert else None, extra=egress_extra)
        return ingress, ingress_port, egress, egress_port
