"""HTTP chaos: a misbehaving upstream and misbehaving clients, mixed at random (fixed seed),
through an egress (plain in, TLS out) and an ingress (TLS in, plain out) sidecar with
protocol=http. Whatever the peers do, the proxy must stay up, answer every complete request
with one well-formed status line or close, and afterwards hold no connection, no request
and no descriptor more than before."""

import os
import random
import socket
import ssl
import threading
import time

import harness
from harness import LOOPBACK, SERVICE

SEED = 20261122
CLIENTS = 240


# ---- the misbehaving upstream -------------------------------------------------------

GOOD = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
UPSTREAM_MOVES = [
    ("good", GOOD),
    ("good-chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ("te-and-cl", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello"),
    ("bad-cl", b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"),
    ("garbage", b"\x00\x01garbage\r\n\r\n"),
    ("bad-status", b"HTTP/1.1 2000 OK\r\n\r\n"),
    ("truncated-head", b"HTTP/1.1 200 OK\r\nContent-Le"),
    ("truncated-body", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"),
    ("close-now", b""),
    ("reset", None),
    ("until-close", b"HTTP/1.0 200 OK\r\n\r\nbody until close"),
    ("interims", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + GOOD),
    ("extra-bytes", GOOD + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ("bad-chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    ("huge-head", b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\nContent-Length: 0\r\n\r\n"),
    ("switch", b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nraw"),
]


class ChaosUpstream:
    """Reads one request head per exchange and answers with a random move; keeps the
    connection for the next request only after a well-formed move."""

    def __init__(self, seed):
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.threads = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _move(self):
        with self.lock:
            return self.random.choice(UPSTREAM_MOVES)

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()

    def _serve(self, conn):
        conn.settimeout(5)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                # Bodies: the chaos clients send Content-Length bodies only.
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        need = int(line.split(b":")[1])
                        while len(buf) < need:
                            data = conn.recv(65536)
                            if not data:
                                return
                            buf += data
                        buf = buf[need:]
                name, reply = self._move()
                if reply is None:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return
                conn.sendall(reply)
                if name not in ("good", "good-chunked", "interims"):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.closed = True
        self.sock.close()


# ---- the misbehaving clients ------------------------------------------------------------

def request(path="/", extra=b""):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + SERVICE.encode() + b"\r\n" + extra + b"\r\n"


CLIENT_MOVES = [
    ("one", [request()]),
    ("keepalive", [request("/a"), request("/b"), request("/c")]),
    ("pipelined", [request("/a") + request("/b")]),
    ("post", [b"POST /p HTTP/1.1\r\nHost: " + SERVICE.encode() + b"\r\nContent-Length: 4\r\n\r\nbody"]),
    ("smuggle", [b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + request()]),
    ("garbage", [b"\x16\x03\x01garbage\r\n\r\n"]),
    ("half-head", [b"GET / HTTP/1.1\r\nHo"]),
    ("half-body", [b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"]),
    ("close-early", [request()[:10]]),
    ("upgrade", [request("/ws", b"Connection: upgrade\r\nUpgrade: websocket\r\n")]),
    ("http10", [b"GET / HTTP/1.0\r\n\r\n"]),
]


def complete_requests(move):
    return move[0] in ("one", "keepalive", "pipelined", "post", "http10")


def play(port, move, wrap=None, rng=None):
    """Plays one client move; returns the bytes received (or None on a transport error)."""
    try:
        sock = socket.create_connection((LOOPBACK, port), timeout=5)
    except OSError:
        return None
    try:
        if wrap is not None:
            sock = wrap(sock)
        for chunk in move[1]:
            sock.sendall(chunk)
            if rng is not None and rng.random() < 0.3:
                time.sleep(0.005)
        if move[0] in ("half-head", "half-body", "close-early") or rng.random() < 0.1:
            return b""  # walk away
        sock.settimeout(3)
        out = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            out += data
            if out.count(b"HTTP/1.") >= max(1, len(move[1])) and out.endswith((b"hello", b"\n", b"0\r\n\r\n")):
                break
        return out
    except (OSError, ssl.SSLError):
        return None
    finally:
        try:
            sock.close()
        except OSError:
            pass


def descriptors(proc):
    """What each of proc's open descriptors refers to, by number."""
    found = {}
    for fd in os.listdir(f"/proc/{proc.pid}/fd"):
        try:
            found[fd] = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
        except OSError:
            pass  # closed meanwhile
    return found


def settled_fd_count(proc):
    """proc's descriptor count once it holds still (the same in two looks 0.2 s apart):
    not counting, say, the admin connection of the readiness check still being closed."""
    last = proc.fd_count()
    for _ in range(50):
        time.sleep(0.2)
        now = proc.fd_count()
        if now == last:
            return now
        last = now
    return last


class HttpChaosTest(harness.PkiCase):
    def settle(self, proc, listener, baseline_fds):
        def calm():
            # Descriptors first: the admin connection of the stats request below is
            # closed by the time of the next look, so it is never counted.
            fds = proc.fd_count()
            stats = proc.stats()
            active = proc.stat("ringside_listener_cx_active", listener, stats=stats)
            up = proc.stat("ringside_listener_upstream_cx_active", listener, stats=stats)
            return active == 0 and up == 0 and fds <= baseline_fds
        ok = harness.wait_until(calm, timeout=20, interval=0.2)
        stats = proc.stats()
        self.assertTrue(ok, f"{listener}: not back to idle: cx_active="
                        f"{proc.stat('ringside_listener_cx_active', listener, stats=stats)} "
                        f"upstream_cx_active="
                        f"{proc.stat('ringside_listener_upstream_cx_active', listener, stats=stats)} "
                        f"fds={proc.fd_count()} (baseline {baseline_fds}): "
                        f"{sorted(descriptors(proc).values())}\n{self.diag()}")
        self.assertEqual(proc.stat("ringside_http_listener_request_active", listener), 0,
                         "requests still counted active")
        self.assertEqual(proc.ready_status(), 200)

    def run_chaos(self, port, proc, listener, wrap, seed):
        baseline = settled_fd_count(proc)
        malformed = []
        statuses = {}
        lock = threading.Lock()

        def worker(n):
            local = random.Random(seed + n)
            for _ in range(CLIENTS // 8):
                move = local.choice(CLIENT_MOVES)
                out = play(port, move, wrap, local)
                if out and complete_requests(move) and not out.startswith(b"HTTP/1.1 "):
                    with lock:
                        malformed.append((move[0], out[:80]))
                if out and out.startswith(b"HTTP/1.1 "):
                    with lock:
                        status = out[9:12].decode()
                        statuses[status] = statuses.get(status, 0) + 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads), "clients hung")
        self.assertIsNone(proc.poll(), f"the proxy died\n{self.diag()}")
        self.assertEqual(malformed, [], "answers that do not start with a status line")
        print(f"\n{listener}: statuses seen {statuses}", flush=True)
        # The chaos was real: good answers, refused requests and broken upstreams all seen.
        for status in ("200", "400", "502"):
            self.assertGreater(statuses.get(status, 0), 0, f"no {status} among {statuses}")
        self.settle(proc, listener, baseline)

    def test_egress_survives_chaos(self):
        upstream = ChaosUpstream(SEED)
        self.addCleanup(upstream.close)
        # The chaos upstream speaks plain HTTP: the egress reaches it through an ingress
        # sidecar in TCP mode (TLS terminated, bytes relayed unchanged).
        _, terminator = self.start_ingress(upstream.port, self.cert, self.key, name="terminator")
        proc, port = self.start_egress(
            [terminator], self.ca, options="protocol=http",
            extra=["--request-timeout", "2s", "--request-header-timeout", "1s",
                   "--http-idle-timeout", "3s"], name="egress")
        self.run_chaos(port, proc, harness.listener_label("egress", port), None, SEED)

    def test_ingress_survives_chaos(self):
        upstream = ChaosUpstream(SEED + 1)
        self.addCleanup(upstream.close)
        ctx = harness.tls_client_context(self.ca)

        def wrap(sock):
            return ctx.wrap_socket(sock, server_hostname=SERVICE)

        port = harness.free_port()
        proc = self.start_ringside(
            ["--service-name", SERVICE, "--cert", self.cert, "--key", self.key,
             "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{upstream.port},protocol=http",
             "--request-timeout", "2s", "--request-header-timeout", "1s",
             "--http-idle-timeout", "3s"], name="ingress")
        self.run_chaos(port, proc, harness.listener_label("ingress", port), wrap, SEED + 1)


if __name__ == "__main__":
    harness.main()
