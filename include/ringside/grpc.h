// gRPC over HTTP/2 as the proxy sees it: the status codes, the content type that marks a
// gRPC request, the grpc-timeout header, and the status a reply made by the proxy itself
// carries (a Trailers-Only response). The wire rules are grpc's PROTOCOL-HTTP2.md; the
// mapping of proxy failures to codes is the one Envoy and grpc's own docs use
// (docs/grpc.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringside::grpc {

enum class Status : uint8_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};
inline constexpr int kStatusCount = 17;

// "UNAVAILABLE", "DEADLINE_EXCEEDED", ... (grpc's names); "UNKNOWN" outside the range.
std::string_view status_name(Status status);

// A grpc-status value: decimal 0-16, nothing else (a value out of range is not a status
// a proxy can act on; the caller treats the response as it would without one).
std::optional<Status> parse_status(std::string_view value);

// "application/grpc", optionally followed by "+proto", "+json", ... or parameters.
bool is_grpc_content_type(std::string_view content_type);

// grpc-timeout: 1 to 8 ASCII digits and a unit (H, M, S, m, u, n). In milliseconds,
// rounded up (a deadline of 1 ns is a deadline of 1 ms, not none); nullopt when malformed.
std::optional<uint64_t> parse_timeout_ms(std::string_view value);

// The grpc-timeout value for what is left of a deadline: milliseconds while they fit in 8
// digits, then seconds, then hours. out must hold 9 bytes; returns the length.
size_t format_timeout_ms(uint64_t ms, char* out);

// The status of a reply the proxy makes itself, from the HTTP status it would have sent:
// 503 (no healthy upstream, connect failure) and 502 (upstream reset) UNAVAILABLE, 504 and
// 408 DEADLINE_EXCEEDED, 413/414/431 RESOURCE_EXHAUSTED, 403 PERMISSION_DENIED, 404
// UNIMPLEMENTED, 429 UNAVAILABLE, other 4xx and 5xx (malformed requests) INTERNAL.
Status status_for_http(uint16_t http_status);

// grpc-message is percent-encoded: bytes outside 0x20-0x7E and '%' become %XX.
void percent_encode_message(std::string_view message, std::string& out);

}  // namespace ringside::grpc
