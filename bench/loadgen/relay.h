// `ringside-bench relay LISTEN UPSTREAM`: the floor for bench/compare. A minimal
// plaintext TCP relay doing the socket work a sidecar does for a connection (accept,
// connect to the upstream, relay both ways, pass a half-close on, close) with no TLS, no
// HTTP, no timers and no accounting: one epoll loop, level-triggered, a 64 KiB buffer per
// direction. What a proxy costs above it is the proxy's own work.
#pragma once

#include <atomic>
#include <string>

namespace ringside::bench {

struct RelayOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT to accept on
  std::string upstream;                // HOST:PORT every connection is relayed to
};

// Runs until *stop becomes true (checked at least every 100 ms). Prints "listening on
// ADDR" to stdout once bound. Returns 0 after a stop, 1 when the listener cannot be set
// up or the upstream address does not resolve (with a message on stderr).
int run_relay(const RelayOptions& options, const std::atomic<bool>* stop);

}  // namespace ringside::bench
