// Small helpers shared by ringside-bench's client and server: clocks, duration and size
// parsing, address resolution and socket set-up.
#pragma once

#include <sys/socket.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringside::bench {

// Monotonic time in nanoseconds (CLOCK_MONOTONIC; vDSO, no system call).
inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// "10s", "500ms", "1m", "250us", "2h", "1.5s". A bare number means seconds.
// Returns nullopt for anything else (negative, empty, unknown unit).
std::optional<uint64_t> parse_duration_ns(std::string_view text);

// "4096", "16k", "1M", "1g" (binary multiples). Returns nullopt when malformed.
std::optional<uint64_t> parse_size(std::string_view text);

// "1.23ms", "850us", "2.00s": a latency printed with three significant-ish digits.
std::string format_duration_ns(double ns);

// "12.34MB" with binary units, for transfer rates and totals.
std::string format_bytes(double bytes);

// A resolved socket address.
struct Endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  uint16_t port() const;
  // "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;
};

// Resolves host (name, IPv4 or IPv6 literal, may be empty for 0.0.0.0) and port.
// Blocking (getaddrinfo): start-up only. On failure error says why in one line.
std::optional<Endpoint> resolve_endpoint(std::string_view host, uint16_t port, std::string* error);

// Splits "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" and resolves it.
std::optional<Endpoint> resolve_host_port(std::string_view text, std::string* error);

// Sets O_NONBLOCK and TCP_NODELAY on a connected or accepted TCP socket.
void tune_stream_socket(int fd);

}  // namespace ringside::bench
