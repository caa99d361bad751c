#!/usr/bin/env python3
"""A TCP relay that reports what each TLS connection through it negotiated.

    tls_sniff.py LISTEN_PORT TARGET_PORT OUT_FILE

Listens on 127.0.0.1:LISTEN_PORT, relays every connection to 127.0.0.1:TARGET_PORT and
appends one JSON line per connection to OUT_FILE with what the server chose in its
ServerHello: {"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256",
"group": "x25519", "hello_retry": false}. The ServerHello is in clear text in every TLS
version, so this sees exactly what a real client (the load generator, or a proxy's
egress side) negotiated, without asking either end. bench/compare runs it for one probe
connection per path; it never sits on a measured path.
"""

import json
import socket
import sys
import threading

CIPHERS = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
}
GROUPS = {0x0017: "P-256", 0x0018: "P-384", 0x0019: "P-521", 0x001D: "x25519", 0x001E: "x448"}
VERSIONS = {0x0304: "TLSv1.3", 0x0303: "TLSv1.2", 0x0302: "TLSv1.1", 0x0301: "TLSv1.0"}
# RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello with this random.
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")


def parse_server_hello(body):
    """Returns the choices in one ServerHello handshake body (after the 4-byte header)."""
    pos = 2  # legacy_version
    random = body[pos:pos + 32]
    pos += 32
    pos += 1 + body[pos]  # legacy_session_id_echo
    cipher = int.from_bytes(body[pos:pos + 2], "big")
    pos += 3  # cipher_suite, legacy_compression_method
    version = int.from_bytes(body[0:2], "big")
    group = None
    if pos + 2 <= len(body):
        end = pos + 2 + int.from_bytes(body[pos:pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            ext_type = int.from_bytes(body[pos:pos + 2], "big")
            ext_len = int.from_bytes(body[pos + 2:pos + 4], "big")
            data = body[pos + 4:pos + 4 + ext_len]
            if ext_type == 43 and len(data) >= 2:  # supported_versions
                version = int.from_bytes(data[0:2], "big")
            elif ext_type == 51 and len(data) >= 2:  # key_share (HRR: just the group)
                group = int.from_bytes(data[0:2], "big")
            pos += 4 + ext_len
    return {
        "version": VERSIONS.get(version, hex(version)),
        "cipher": CIPHERS.get(cipher, hex(cipher)),
        "group": GROUPS.get(group, hex(group) if group is not None else None),
        "hello_retry": random == HRR_RANDOM,
    }


class HelloWatcher:
    """Collects server-to-client bytes until the final ServerHello has been parsed."""

    def __init__(self, out_path):
        self.buffer = b""
        self.done = False
        self.retried = False
        self.out_path = out_path

    def feed(self, data):
        if self.done:
            return
        self.buffer += data
        # Records: type(1) version(2) length(2); the ServerHello is the first handshake
        # message of the first handshake record (a HelloRetryRequest is followed by a
        # second ServerHello, possibly after a change_cipher_spec record).
        while len(self.buffer) >= 5:
            length = int.from_bytes(self.buffer[3:5], "big")
            if len(self.buffer) < 5 + length:
                return
            record_type, fragment = self.buffer[0], self.buffer[5:5 + length]
            self.buffer = self.buffer[5 + length:]
            if record_type != 22 or len(fragment) < 4 or fragment[0] != 2:
                continue
            choice = parse_server_hello(fragment[4:])
            if choice["hello_retry"]:
                self.retried = True
                continue
            choice["hello_retry"] = self.retried
            with open(self.out_path, "a", encoding="utf-8") as out:
                out.write(json.dumps(choice) + "\n")
            self.done = True
            return


def pump(src, dst, watcher):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if watcher is not None:
                watcher.feed(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(listen_port, target_port, out_path):
    listener = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)
    print(f"tls_sniff: listening on 127.0.0.1:{listen_port}", flush=True)
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(("127.0.0.1", target_port))
        except OSError:
            client.close()
            continue
        watcher = HelloWatcher(out_path)
        threading.Thread(target=pump, args=(client, server, None), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, watcher), daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: tls_sniff.py LISTEN_PORT TARGET_PORT OUT_FILE")
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
