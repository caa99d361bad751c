"""A tiny gRPC server (grpcio) for the ringside-bench --grpc test: h2c on 127.0.0.1, port
chosen by the kernel and printed as "listening on 127.0.0.1:PORT".

The methods take and return raw bytes (no serializers, so no generated code):
  /bench.Echo/Unary   answers with the request message (status OK), or INVALID_ARGUMENT
                      when it is not --expect-size bytes long
  /bench.Echo/Fail    aborts every call with the status named by --fail-status
"""
import argparse
import sys
from concurrent import futures

import grpc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-status", default="UNAVAILABLE",
                        help="grpc.StatusCode name that /bench.Echo/Fail answers with")
    parser.add_argument("--expect-size", type=int, default=None,
                        help="the request message size /bench.Echo/Unary accepts")
    args = parser.parse_args()
    fail_status = grpc.StatusCode[args.fail_status]

    def unary(request, context):
        if args.expect_size is not None and len(request) != args.expect_size:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{len(request)} bytes, expected {args.expect_size}")
        return request

    def fail(request, context):
        context.abort(fail_status, "failing on purpose")

    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())
