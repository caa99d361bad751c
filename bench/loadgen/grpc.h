// gRPC over HTTP/2 for --grpc: the request message framing and the call's outcome, per the
// gRPC wire protocol (doc/PROTOCOL-HTTP2.md of grpc/grpc). Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ringside/http.h"

namespace ringside::bench {

// The largest --message-size: gRPC's default receive limit is 4 MiB, servers raise it;
// beyond 16 MiB a benchmark measures copying, not calls.
inline constexpr size_t kMaxGrpcMessage = 16u << 20;

// gRPC status codes run 0 (OK) to 16 (UNAUTHENTICATED); one more slot counts calls whose
// grpc-status was missing or not one of them.
inline constexpr int kGrpcStatusCodes = 17;  // grpc::kStatusCount
inline constexpr int kGrpcStatusMissing = kGrpcStatusCodes;
inline constexpr int kGrpcStatusSlots = kGrpcStatusCodes + 1;

// One length-prefixed message: compression flag 0, the payload length as 4 bytes big
// endian, then payload_size bytes of payload (any content: the server sees opaque bytes).
std::string grpc_frame(size_t payload_size);

// The slot of a call's grpc-status among fields (the trailers, or the head of a
// Trailers-Only response): 0..16, or kGrpcStatusMissing when there is none or its value
// is not a decimal code in that range.
int grpc_status_slot(std::span<const http::Field> fields);

// "OK", "UNAVAILABLE", ... for a slot; "missing" for kGrpcStatusMissing.
std::string_view grpc_status_name(int slot);

// True for "/package.Service/Method": a leading '/', a non-empty service, a second '/',
// a non-empty method, and no whitespace or control characters.
bool valid_grpc_path(std::string_view path);

}  // namespace ringside::bench
