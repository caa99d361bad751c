#!/usr/bin/env python3
"""Load for the Service Connect scenario, run inside the client task's namespace: N
threads, each sending GET / on a new connection per request (so every request is a new
upstream pick), until SIGTERM or SIGINT. On exit writes one JSON line per request to OUT:
{"start": t, "end": t, "ok": bool, "replica": "replica-1" | null, "error": "..."}
with t in time.time() seconds, so the orchestrator can split them by phase.

  load.py URL CONCURRENCY OUT
"""

import http.client
import json
import signal
import sys
import threading
import time
import urllib.parse

REQUEST_MARKER = "RS-REQUEST-MARKER-9e2d"


def main():
    url = urllib.parse.urlsplit(sys.argv[1])
    concurrency = int(sys.argv[2])
    out_path = sys.argv[3]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    results = [[] for _ in range(concurrency)]

    def worker(mine):
        while not stop.is_set():
            start = time.time()
            record = {"start": start, "ok": False, "replica": None, "error": ""}
            try:
                conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
                conn.request("GET", url.path or "/", headers={"x-scenario": REQUEST_MARKER})
                response = conn.getresponse()
                body = response.read().decode("utf-8", "replace")
                conn.close()
                if response.status == 200 and " says hello " in body:
                    record["ok"] = True
                    record["replica"] = body.split(" ", 1)[0]
                else:
                    record["error"] = f"status {response.status}: {body[:80]!r}"
            except Exception as e:  # every failure is a data point, never a crash
                record["error"] = f"{type(e).__name__}: {e}"
            record["end"] = time.time()
            mine.append(record)

    threads = [threading.Thread(target=worker, args=(results[i],)) for i in range(concurrency)]
    for t in threads:
        t.start()
    print("load running", flush=True)
    while not stop.is_set():
        stop.wait(0.2)
    for t in threads:
        t.join(timeout=15)
    with open(out_path, "w") as out:
        for mine in results:
            for record in mine:
                out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
