#!/usr/bin/env python3
"""Holds many idle, established TLS connections to one address.

    idle_clients.py PORT CA_FILE SNI [h2]

Reads commands on stdin, one per line, and answers each on stdout:
  open N   open connections until N are held; each does a TLS 1.3 handshake, sends one
           HTTP/1.1 request and reads the whole response, so the connection is
           established end to end (proxy to upstream included) and has carried data;
           answers "ok N" or "error MESSAGE"
  quit     close everything and exit
With h2, each connection negotiates h2 with ALPN and makes its one request over HTTP/2
(hand-made frames: the preface, an empty SETTINGS, one HEADERS with static-table HPACK),
reading until the response stream ends, so the proxy holds a live HTTP/2 session for it.
The memory scenarios of bench/compare measure the proxy's resident memory between
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


def frame(kind, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") \
        + payload


def h2_request(sni):
    # HPACK, static table only: :method GET (2), :scheme https (7), :path / (4), then
    # :authority (1) as a literal without indexing.
    authority = sni.encode()
    block = bytes([0x82, 0x87, 0x84, 0x01, len(authority)]) + authority
    return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")
            + frame(1, 0x05, 1, block))  # HEADERS, END_STREAM | END_HEADERS


def read_h2_response(conn):
    data = b""
    while True:
        while len(data) < 9 or len(data) < 9 + int.from_bytes(data[:3], "big"):
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError("closed before the HTTP/2 response ended")
            data += chunk
        length = int.from_bytes(data[:3], "big")
        kind, flags = data[3], data[4]
        stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        data = data[9 + length:]
        if kind == 4 and not flags & 1:
            conn.sendall(frame(4, 1, 0, b""))  # acknowledge the server's SETTINGS
        if kind == 7:
            raise OSError("GOAWAY")
        if stream == 1 and kind in (0, 1) and flags & 1:
            return


def open_one_h2(context, port, sni):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = context.wrap_socket(raw, server_hostname=sni)
    if conn.selected_alpn_protocol() != "h2":
        raise OSError("h2 was not negotiated")
    conn.sendall(h2_request(sni))
    read_h2_response(conn)
    return conn


def main():
    if len(sys.argv) not in (4, 5) or (len(sys.argv) == 5 and sys.argv[4] != "h2"):
        sys.exit("usage: idle_clients.py PORT CA_FILE SNI [h2]")
    port, ca_file, sni = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    h2 = len(sys.argv) == 5
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    if h2:
        context.set_alpn_protocols(["h2"])
    opener = open_one_h2 if h2 else open_one
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
            futures = [pool.submit(opener, context, port, sni)
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
