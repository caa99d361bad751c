#!/usr/bin/env python3
"""The application of one replica in the Service Connect scenario: a tiny HTTP server on
127.0.0.1 only (reachable solely through its sidecar) that says which replica answered.

  replica_app.py NAME [PORT]

GET /            -> 200 "NAME says hello RS-RESPONSE-MARKER-5b1c\n"
GET /slow?ms=N   -> the same after N milliseconds (a long request that must drain)
Every response carries x-replica: NAME. The marker strings are what the scenario's
packet capture looks for between namespaces.
"""

import http.server
import sys
import time
import urllib.parse

RESPONSE_MARKER = "RS-RESPONSE-MARKER-5b1c"


def main():
    name = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8080

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per response (buffered, flushed after each request) and no Nagle:
        # a head and a body in two small writes would wait on the peer's delayed ACK.
        wbufsize = 65536
        disable_nagle_algorithm = True

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/slow":
                ms = int(urllib.parse.parse_qs(url.query).get("ms", ["1000"])[0])
                time.sleep(min(ms, 30000) / 1000.0)
            body = f"{name} says hello {RESPONSE_MARKER}\n".encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.send_header("x-replica", name)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"{name} listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
