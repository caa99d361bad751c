// gRPC status codes, content type and grpc-timeout (include/ringside/grpc.h).
#include "ringside/grpc.h"

#include <array>
#include <charconv>

namespace ringside::grpc {

namespace {

constexpr std::array<std::string_view, kStatusCount> kNames = {
    "OK",
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
};

constexpr uint64_t kMaxDigits = 99'999'999;  // grpc-timeout: at most 8 digits

}  // namespace

std::string_view status_name(Status status) {
  const auto i = static_cast<size_t>(status);
  return i < kNames.size() ? kNames[i] : kNames[static_cast<size_t>(Status::kUnknown)];
}

std::optional<Status> parse_status(std::string_view value) {
  if (value.empty() || value.size() > 2) return std::nullopt;
  unsigned n = 0;
  for (char ch : value) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + static_cast<unsigned>(ch - '0');
  }
  if (n >= static_cast<unsigned>(kStatusCount)) return std::nullopt;
  return static_cast<Status>(n);
}

bool is_grpc_content_type(std::string_view content_type) {
  constexpr std::string_view kType = "application/grpc";
  if (content_type.size() < kType.size()) return false;
  for (size_t i = 0; i < kType.size(); ++i) {
    char ch = content_type[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (ch != kType[i]) return false;
  }
  if (content_type.size() == kType.size()) return true;
  const char next = content_type[kType.size()];
  return next == '+' || next == ';';
}

std::optional<uint64_t> parse_timeout_ms(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  uint64_t n = 0;
  for (char ch : value.substr(0, value.size() - 1)) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(ch - '0');
  }
  auto up = [](uint64_t v, uint64_t per_ms) { return (v + per_ms - 1) / per_ms; };
  switch (value.back()) {
    case 'H':
      return n * 3'600'000;
    case 'M':
      return n * 60'000;
    case 'S':
      return n * 1'000;
    case 'm':
      return n;
    case 'u':
      return up(n, 1'000);
    case 'n':
      return up(n, 1'000'000);
    default:
      return std::nullopt;
  }
}

size_t format_timeout_ms(uint64_t ms, char* out) {
  char unit = 'm';
  uint64_t n = ms;
  if (n > kMaxDigits) {
    n = (ms + 999) / 1'000;
    unit = 'S';
  }
  if (n > kMaxDigits) {
    n = (ms + 3'599'999) / 3'600'000;
    unit = 'H';
  }
  if (n > kMaxDigits) n = kMaxDigits;
  const auto result = std::to_chars(out, out + 8, n);
  *result.ptr = unit;
  return static_cast<size_t>(result.ptr - out) + 1;
}

Status status_for_http(uint16_t http_status) {
  switch (http_status) {
    case 401:
      return Status::kUnauthenticated;
    case 403:
      return Status::kPermissionDenied;
    case 404:
      return Status::kUnimplemented;
    case 408:
    case 504:
      return Status::kDeadlineExceeded;
    case 413:
    case 414:
    case 431:
      return Status::kResourceExhausted;
    case 429:
    case 502:
    case 503:
      return Status::kUnavailable;
    default:
      return http_status >= 400 ? Status::kInternal : Status::kUnknown;
  }
}

void percent_encode_message(std::string_view message, std::string& out) {
  constexpr std::string_view kHex = "0123456789ABCDEF";
  for (char ch : message) {
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x20 && b <= 0x7e && b != '%') {
      out += ch;
    } else {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
  }
}

}  // namespace ringside::grpc
