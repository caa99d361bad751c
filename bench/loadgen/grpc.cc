#include "grpc.h"

#include "ringside/grpc.h"

namespace ringside::bench {

static_assert(kGrpcStatusCodes == grpc::kStatusCount);

std::string grpc_frame(size_t payload_size) {
  std::string frame(5 + payload_size, 'x');
  frame[0] = 0;  // not compressed
  const auto length = static_cast<uint32_t>(payload_size);
  for (int i = 0; i < 4; ++i)
    frame[static_cast<size_t>(1 + i)] = static_cast<char>(length >> (24 - 8 * i));
  return frame;
}

int grpc_status_slot(std::span<const http::Field> fields) {
  // HTTP/2 field names are lower case.
  for (const http::Field& field : fields) {
    if (field.name != "grpc-status") continue;
    const auto status = grpc::parse_status(field.value);
    return status ? static_cast<int>(*status) : kGrpcStatusMissing;
  }
  return kGrpcStatusMissing;
}

std::string_view grpc_status_name(int slot) {
  if (slot < 0 || slot >= kGrpcStatusCodes) return "missing";
  return grpc::status_name(static_cast<grpc::Status>(slot));
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
