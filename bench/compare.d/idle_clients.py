#!/usr/bin/env python3
"""Holds many idle, established TLS connections to one address.

    idle_clients.py PORT CA_FILE SNI

Reads commands on stdin, one per line, and answers each on stdout:
  open N   open connections until N are held; each does a TLS 1.3 handshake, sends one
           HTTP/1.1 request and reads the whole response, so the connection is
           established end to end (proxy to upstream included) and has carried data;
           answers "ok N" or "error MESSAGE"
  quit     close everything and exit
The memory scenario of bench/compare measures the proxy's resident memory between
commands. Handshakes run on a few threads (OpenSSL releases the GIL) to overlap the
round trips with the proxy's work.
"""

import concurrent.futures
import resource
import socket
import ssl
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: app.sample-namespace\r\n\r\n"


def read_response(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise OSError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            raise OSError("closed before the response body ended")
        body += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError("unexpected response: " + head.split(b"\r\n")[0].decode(errors="replace"))


def open_one(context, port, sni):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = context.wrap_socket(raw, server_hostname=sni)
    conn.sendall(REQUEST)
    read_response(conn)
    return conn


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: idle_clients.py PORT CA_FILE SNI")
    port, ca_file, sni = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    held = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] != "open" or len(words) != 2:
            print("error unknown command", flush=True)
            continue
        target = int(words[1])
        try:
            futures = [pool.submit(open_one, context, port, sni)
                       for _ in range(max(0, target - len(held)))]
            for future in futures:
                held.append(future.result())
            print(f"ok {len(held)}", flush=True)
        except (OSError, ssl.SSLError) as error:
            print(f"error {error}", flush=True)
    for conn in held:
        conn.close()


if __name__ == "__main__":
    main()
