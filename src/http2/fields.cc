// Owned field lists and the HTTP/1.1 <-> HTTP/2 head translations (RFC 9113 8.2, 8.3).
#include <array>
#include <charconv>
#include <cstring>

#include "ringside/grpc.h"
#include "ringside/http2_fields.h"

namespace ringside::http2 {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

void OwnedFields::add(std::string_view name, std::string_view value) {
  const auto at = static_cast<uint32_t>(bytes_.size());
  bytes_.append(name);
  bytes_.append(value);
  spans_.push_back(Span{at, static_cast<uint32_t>(name.size()),
                        at + static_cast<uint32_t>(name.size()),
                        static_cast<uint32_t>(value.size())});
  views_stale_ = true;
}

void OwnedFields::add_lowercase(std::string_view name, std::string_view value) {
  const size_t at = bytes_.size();
  add(name, value);
  for (size_t i = at; i < at + name.size(); ++i) bytes_[i] = lower(bytes_[i]);
}

void OwnedFields::clear() {
  bytes_.clear();
  spans_.clear();
  views_.clear();
  views_stale_ = false;
}

void OwnedFields::clear_and_trim(size_t keep_bytes) {
  clear();
  if (bytes_.capacity() > keep_bytes) {
    std::string().swap(bytes_);
    std::vector<Span>().swap(spans_);
    std::vector<Field>().swap(views_);
  }
}

std::span<const Field> OwnedFields::fields() const {
  if (views_stale_) {
    views_.clear();
    views_.reserve(spans_.size());
    for (const Span& s : spans_) {
      views_.push_back(Field{std::string_view(bytes_).substr(s.name_at, s.name_len),
                             std::string_view(bytes_).substr(s.value_at, s.value_len)});
    }
    views_stale_ = false;
  }
  return views_;
}

bool parse_decimal(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 19) return false;
  uint64_t n = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return false;
    n = n * 10 + static_cast<uint64_t>(ch - '0');
  }
  out = n;
  return true;
}

bool has_uppercase(std::string_view text) {
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHigh = kOnes * 0x80;
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    // With each byte's top bit cleared, adding to it carries into no other byte. A byte
    // is 'A'..'Z' when adding 0x80 - 'A' sets its top bit and adding 0x80 - 'Z' - 1 does
    // not, and its own top bit was clear.
    const uint64_t low = word & ~kHigh;
    const uint64_t at_least_a = low + kOnes * (0x80 - 'A');
    const uint64_t above_z = low + kOnes * (0x80 - 'Z' - 1);
    if ((at_least_a & ~above_z & ~word & kHigh) != 0) return true;
  }
  for (; i < text.size(); ++i) {
    if (text[i] >= 'A' && text[i] <= 'Z') return true;
  }
  return false;
}

bool is_connection_specific(std::string_view name) {
  static constexpr std::array<std::string_view, 5> kNames = {
      "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"};
  for (std::string_view n : kNames) {
    if (http::iequals(name, n)) return true;
  }
  return false;
}

// Names a Connection field lists (RFC 9110 7.6.1), any case.
static bool listed_by_connection(std::string_view name, std::span<const Field> in) {
  for (const Field& f : in) {
    if (!http::iequals(f.name, "connection")) continue;
    std::string_view list = f.value;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      if (http::iequals(trim(list.substr(0, comma)), name)) return true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return false;
}

void to_http2_fields(std::span<const Field> in, OwnedFields& out) {
  out.clear();
  bool has_authority = false;
  std::string_view host;
  bool has_host = false;
  for (const Field& f : in) {
    if (is_pseudo(f.name)) {
      out.add_lowercase(f.name, f.value);
      has_authority = has_authority || http::iequals(f.name, ":authority");
    } else if (!has_host && http::iequals(f.name, "host")) {
      host = f.value;
      has_host = true;
    }
  }
  if (!has_authority && has_host) out.add(":authority", host);
  for (const Field& f : in) {
    if (is_pseudo(f.name) || http::iequals(f.name, "host") || is_connection_specific(f.name)) {
      continue;
    }
    if (http::iequals(f.name, "te")) {
      // Only "trailers" may cross (RFC 9113 8.2.2); other codings are hop-by-hop.
      if (http::iequals(trim(f.value), "trailers")) out.add("te", "trailers");
      continue;
    }
    if (listed_by_connection(f.name, in)) continue;
    out.add_lowercase(f.name, f.value);
  }
}

void to_http1_fields(std::span<const Field> in, std::vector<Field>& out, std::string& joined) {
  out.clear();
  joined.clear();
  std::string_view authority;
  bool has_host = false;
  size_t cookies = 0;
  for (const Field& f : in) {
    if (is_pseudo(f.name)) {
      out.push_back(f);
      if (f.name == ":authority") authority = f.value;
    } else if (http::iequals(f.name, "host")) {
      has_host = true;
    } else if (f.name == "cookie") {
      ++cookies;
    }
  }
  if (!has_host && !authority.empty()) out.push_back(Field{"host", authority});
  // Every cookie crumb is joined into the first cookie field, where it stands. The joined
  // value is complete before a view of it is taken.
  if (cookies > 1) {
    bool first = true;
    for (const Field& f : in) {
      if (f.name != "cookie") continue;
      if (!first) joined += "; ";
      joined += f.value;
      first = false;
    }
  }
  bool cookie_done = false;
  for (const Field& f : in) {
    if (is_pseudo(f.name)) continue;
    if (f.name != "cookie") {
      out.push_back(f);
      continue;
    }
    if (cookie_done) continue;
    cookie_done = true;
    out.push_back(cookies > 1 ? Field{f.name, joined} : f);
  }
}

namespace {

std::string_view number(char (&digits)[24], uint64_t value) {
  const auto result = std::to_chars(digits, digits + sizeof(digits), value);
  return {digits, static_cast<size_t>(result.ptr - digits)};
}

}  // namespace

bool to_http2_response(const http::ResponseHead& head, const http::ResponseContext& context,
                       OwnedFields& out) {
  out.clear();
  char digits[24];
  out.add(":status", number(digits, head.status));
  const bool interim = head.interim();
  const bool keep_content_length = !interim && head.framing == http::Framing::kNone &&
                                   (context.request_is_head || head.status == 304);
  const bool replace_server = !interim && context.headers.server;
  const bool replace_service_time =
      !interim && context.headers.upstream_service_time && context.upstream_service_time_ms >= 0;
  for (const Field& f : head.fields) {
    if (is_connection_specific(f.name) || http::is_hop_by_hop(f.name, head.fields)) continue;
    if (http::iequals(f.name, "content-length") && !keep_content_length) continue;
    if (replace_server && http::iequals(f.name, "server")) continue;
    if (replace_service_time && http::iequals(f.name, "x-upstream-service-time")) continue;
    out.add_lowercase(f.name, f.value);
  }
  if (interim) return false;
  if (head.framing == http::Framing::kContentLength) {
    out.add("content-length", number(digits, head.content_length));
  }
  if (context.headers.server) out.add("server", "ringside");
  if (replace_service_time) {
    out.add("x-upstream-service-time",
            number(digits, static_cast<uint64_t>(context.upstream_service_time_ms)));
  }
  // An empty body (Content-Length: 0, or an HTTP/2 upstream's response that ended with
  // its HEADERS, gRPC's Trailers-Only) ends the stream with the HEADERS frame.
  return head.framing != http::Framing::kNone &&
         !(head.framing == http::Framing::kContentLength && head.content_length == 0);
}

void to_http2_local_response(const http::LocalResponse& response, OwnedFields& out) {
  out.clear();
  char digits[24];
  if (response.grpc) {
    // Trailers-Only: one HEADERS frame, with END_STREAM, holding the status.
    out.add(":status", "200");
    out.add("content-type", "application/grpc");
    out.add("grpc-status",
            number(digits, static_cast<unsigned>(grpc::status_for_http(response.status))));
    std::string message;
    grpc::percent_encode_message(response.body, message);
    out.add("grpc-message", message);
    if (response.server_header) out.add("server", "ringside");
    if (!response.request_id.empty()) out.add("x-request-id", response.request_id);
    return;
  }
  out.add(":status", number(digits, response.status));
  out.add("content-type", "text/plain");
  out.add("content-length", number(digits, response.body.size() + 1));
  if (response.server_header) out.add("server", "ringside");
  if (!response.request_id.empty()) out.add("x-request-id", response.request_id);
}

}  // namespace ringside::http2
