// `ringside-bench serve`: the upstream used by demos and tests. Two personalities:
//  - an HTTP/1.1 keep-alive "hello" server: answers every request on any path with a
//    fixed body, handles pipelining, and can answer late (--delay) or stall once
//    (--stall-after/--stall-for) to check a load generator's latency accounting;
//  - a TCP echo server (--echo) that relays the client's half-close: after reading EOF it
//    finishes echoing and then shuts down its own write side;
//  - a gRPC echo server (--grpc): h2c with prior knowledge on the project's HTTP/2 codec,
//    answering every unary call on any path with its own request message (GrpcEcho).
// One epoll loop per thread, each with its own SO_REUSEPORT listener.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace ringside::bench {

struct ServeOptions {
  std::string address = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free port
  uint64_t body_size = 13;                 // "Hello, world\n"
  unsigned threads = 1;
  uint64_t delay_ns = 0;      // every response is sent this long after its request arrived
  uint64_t stall_after = 0;   // after this many requests (0: never) ...
  uint64_t stall_for_ns = 0;  // ... no response leaves for this long, once
  bool echo = false;          // TCP echo instead of HTTP
  bool grpc = false;          // gRPC echo over h2c instead of HTTP/1.1
};

// The bytes of the hello response (status line, headers, body) for body_size.
std::string hello_response(uint64_t body_size);

// Runs until *stop becomes true (checked at least every 100 ms). Prints one line
// "listening on ADDR" to stdout once every listener is bound, so scripts can wait for it.
// Returns a process exit status: 0 after a stop, 1 if the address cannot be bound (with a
// message on stderr).
int run_server(const ServeOptions& options, const std::atomic<bool>* stop);

}  // namespace ringside::bench
