#!/usr/bin/env python3
"""A TCP discard sink: accepts connections on 127.0.0.1:PORT and reads everything.

    discard_sink.py PORT

The upstream of the bulk-relay scenario: it reads with 1 MiB recv_into calls, so its
per-byte cost is the kernel's copy and the Python overhead per call is negligible. It
prints one line once listening and runs until killed.
"""

import socket
import sys
import threading


def drain(conn):
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with conn:
        try:
            while conn.recv_into(view):
                pass
        except OSError:
            pass


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: discard_sink.py PORT")
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
    print(f"discard_sink: listening on 127.0.0.1:{sys.argv[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
