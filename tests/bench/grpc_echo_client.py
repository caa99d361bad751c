"""A grpcio client for the `ringside-bench serve --grpc` test: calls the echo app over h2c
and checks that every call gets its own request bytes back with status OK. Exits 1 with
the first mismatch; prints "ok CALLS" otherwise.

    grpc_echo_client.py PORT

The calls: an empty message, a short one, one larger than HTTP/2's default windows, a
method path other than /bench.Echo/Unary, and 400 calls in flight at once over 4 channels
(HTTP/2 connections), each with different bytes.
"""
import os
import sys

import grpc


def check(got, want, what):
    if got != want:
        sys.exit(f"{what}: got {len(got)} bytes {got[:16]!r}..., want {len(want)} bytes "
                 f"{want[:16]!r}...")


def main():
    target = f"127.0.0.1:{int(sys.argv[1])}"
    channels = [grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(4)]
    for channel in channels:
        grpc.channel_ready_future(channel).result(timeout=10)

    def method(channel, path="/bench.Echo/Unary"):
        # No serializers: the request and response are raw bytes.
        return channel.unary_unary(path)

    calls = 0
    for payload, what in ((b"", "empty message"), (b"hello, echo", "short message"),
                          (os.urandom(300 * 1024), "300 KiB message")):
        check(method(channels[0])(payload, timeout=10), payload, what)
        calls += 1
    check(method(channels[1], "/other.Service/Method")(b"any path", timeout=10), b"any path",
          "another path")
    calls += 1

    pending = []
    for i in range(400):
        payload = i.to_bytes(4, "big") + os.urandom(i % 97)
        pending.append((method(channels[i % len(channels)]).future(payload, timeout=20), payload))
    for i, (future, payload) in enumerate(pending):
        check(future.result(), payload, f"concurrent call {i}")
        calls += 1
    for channel in channels:
        channel.close()
    print(f"ok {calls}")


if __name__ == "__main__":
    main()
