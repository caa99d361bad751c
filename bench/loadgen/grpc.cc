#include "grpc.h"

namespace ringside::bench {

std::string grpc_frame(size_t payload_size) {
  std::string frame(5 + payload_size, 'x');
  frame[0] = 0;  // not compressed
  const auto length = static_cast<uint32_t>(payload_size);
  for (int i = 0; i < 4; ++i)
    frame[static_cast<size_t>(1 + i)] = static_cast<char>(length >> (24 - 8 * i));
  return frame;
}

int grpc_status_slot(std::span<const http::Field> fields) {
  for (const http::Field& field : fields) {
    if (field.name != "grpc-status") continue;  // HTTP/2 field names are lower case
    std::string_view value = field.value;
    if (value.empty() || value.size() > 2) return kGrpcStatusMissing;
    int code = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return kGrpcStatusMissing;
      code = code * 10 + (c - '0');
    }
    return code < kGrpcStatusCodes ? code : kGrpcStatusMissing;
  }
  return kGrpcStatusMissing;
}

std::string_view grpc_status_name(int slot) {
  static constexpr std::string_view kNames[kGrpcStatusSlots] = {"OK",
                                                                "CANCELLED",
                                                                "UNKNOWN",
                                                                "INVALID_ARGUMENT",
                                                                "DEADLINE_EXCEEDED",
                                                                "NOT_FOUND",
                                                                "ALREADY_EXISTS",
                                                                "PERMISSION_DENIED",
                                                                "RESOURCE_EXHAUSTED",
                                                                "FAILED_PRECONDITION",
                                                                "ABORTED",
                                                                "OUT_OF_RANGE",
                                                                "UNIMPLEMENTED",
                                                                "INTERNAL",
                                                                "UNAVAILABLE",
                                                                "DATA_LOSS",
                                                                "UNAUTHENTICATED",
                                                                "missing"};
  return slot >= 0 && slot < kGrpcStatusSlots ? kNames[slot] : "missing";
}

bool valid_grpc_path(std::string_view path) {
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  if (path.size() < 4 || path.front() != '/') return false;
  const size_t slash = path.find('/', 1);
  return slash != std::string_view::npos && slash > 1 && slash + 1 < path.size() &&
         path.find('/', slash + 1) == std::string_view::npos;
}

}  // namespace ringside::bench
