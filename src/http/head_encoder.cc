// Request and response heads as the proxy forwards them: normalized framing, hop-by-hop
// fields removed, the proxy's own fields added. See http_proxy.h for the rules.
#include <charconv>
#include <cstring>
#include <vector>

#include "ringside/http_proxy.h"

namespace ringside::http {
namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

// Writes a head at the end of a string through a pointer, into room made once: a head
// is a few dozen small pieces, and each std::string append checks the capacity and
// writes a terminator. The room is an estimate; a piece that does not fit grows it.
class HeadWriter {
 public:
  HeadWriter(std::string& out, size_t room) : out_(out), start_(out.size()) {
    out_.resize(start_ + room);
    at_ = out_.data() + start_;
    end_ = out_.data() + out_.size();
  }
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;
  ~HeadWriter() { out_.resize(static_cast<size_t>(at_ - out_.data())); }

  // (memcpy is not called for an empty piece: a default string_view's data() is null.)
  void put(std::string_view text) {
    if (text.empty()) return;
    if (static_cast<size_t>(end_ - at_) < text.size()) [[unlikely]]
      grow(text.size());
    std::memcpy(at_, text.data(), text.size());
    at_ += text.size();
  }
  void put(char c) {
    if (at_ == end_) [[unlikely]]
      grow(1);
    *at_++ = c;
  }
  void number(uint64_t value) {
    if (end_ - at_ < 20) [[unlikely]]
      grow(20);
    at_ = std::to_chars(at_, end_, value).ptr;
  }
  void field(std::string_view name, std::string_view value) {
    const size_t size = name.size() + value.size() + 4;
    if (static_cast<size_t>(end_ - at_) < size) [[unlikely]]
      grow(size);
    std::memcpy(at_, name.data(), name.size());
    at_ += name.size();
    *at_++ = ':';
    *at_++ = ' ';
    if (!value.empty()) std::memcpy(at_, value.data(), value.size());
    at_ += value.size();
    *at_++ = '\r';
    *at_++ = '\n';
  }

 private:
  void grow(size_t need) {
    const size_t used = static_cast<size_t>(at_ - out_.data());
    out_.resize(used + need + (used - start_) + 256);
    at_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string& out_;
  size_t start_;
  char* at_;
  char* end_;
};

// Room for a head: its fields as received, and what the encoder adds.
size_t head_room(std::span<const Field> fields, size_t line) {
  size_t room = line + 256;
  for (const Field& f : fields) room += f.name.size() + f.value.size() + 4;
  return room;
}

// The hop-by-hop names of one message, collected once per head into a per-thread vector
// (allocated on first use only) instead of re-scanning the Connection fields per field.
class HopByHop {
 public:
  explicit HopByHop(std::span<const Field> fields) : names_(scratch()) {
    hop_by_hop_names(fields, names_);
  }
  bool contains(std::string_view name) const {
    for (std::string_view hop : names_) {
      if (iequals(hop, name)) return true;
    }
    return false;
  }

 private:
  static std::vector<std::string_view>& scratch() {
    static thread_local std::vector<std::string_view> names;
    return names;
  }
  std::vector<std::string_view>& names_;
};

// The part of an absolute-form target after its authority: "http://a:1/b?c" -> "/b?c",
// "http://a?c" -> "?c" (path empty), "http://a" -> "".
std::string_view after_authority(std::string_view target) {
  const size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return target;
  const size_t start = scheme_end + 3;
  const size_t end = target.find_first_of("/?", start);
  return end == std::string_view::npos ? std::string_view() : target.substr(end);
}

}  // namespace

const Field* find_field(std::span<const Field> fields, std::string_view name) {
  for (const Field& field : fields) {
    if (iequals(field.name, name)) return &field;
  }
  return nullptr;
}

std::string_view find_request_id(std::span<const Field> fields) {
  const Field* field = find_field(fields, "x-request-id");
  return field == nullptr ? std::string_view() : field->value;
}

void append_upstream_target(const RequestHead& head, HeadWriter& out) {
  if (head.target_form != TargetForm::kAbsolute) {
    out.put(head.target);
    return;
  }
  const std::string_view rest = after_authority(head.target);
  // "http://a" and "http://a?q" have an empty path; origin-form needs "/" (RFC 9112 3.2.1).
  if (rest.empty() || rest.front() == '?') out.put('/');
  out.put(rest);
}

std::string_view target_path(const RequestHead& head) {
  std::string_view target = head.target;
  if (head.target_form == TargetForm::kAbsolute) {
    target = after_authority(target);
    if (target.empty() || target.front() == '?') return "/";
  } else if (head.target_form != TargetForm::kOrigin) {
    return target;
  }
  return target.substr(0, target.find('?'));
}

void encode_request_head(const RequestHead& head, const RequestContext& context,
                         std::string& buffer) {
  HeadWriter out(buffer, head_room(head.fields,
                                   head.method.size() + head.target.size() + head.authority.size() +
                                       context.request_id.size() + context.client_address.size() +
                                       context.client_cert.size()));
  out.put(head.method);
  out.put(' ');
  append_upstream_target(head, out);
  out.put(" HTTP/1.1\r\n");

  out.field("Host", head.authority.empty() ? context.default_host : head.authority);

  const bool forwarded = context.ingress && context.headers.forwarded;
  const HopByHop hop(head.fields);
  bool request_id_forwarded = false;
  bool forwarded_for_seen = false;
  bool forwarded_proto_kept = false;
  for (const Field& field : head.fields) {
    if (hop.contains(field.name) || iequals(field.name, "host") ||
        iequals(field.name, "content-length") || iequals(field.name, "transfer-encoding")) {
      continue;
    }
    if (context.ingress && iequals(field.name, "x-forwarded-client-cert")) continue;
    if (forwarded) {
      if (iequals(field.name, "x-forwarded-proto")) {
        if (!context.trusted_downstream) continue;
        forwarded_proto_kept = true;
      }
      if (iequals(field.name, "x-forwarded-for")) {
        // Several fields are one comma-separated list (RFC 9110 5.3); kept in order.
        forwarded_for_seen = true;
        continue;
      }
    }
    if (iequals(field.name, "x-request-id")) request_id_forwarded = true;
    out.field(field.name, field.value);
  }

  switch (head.framing) {
    case Framing::kContentLength:
      out.put("Content-Length: ");
      out.number(head.content_length);
      out.put("\r\n");
      break;
    case Framing::kChunked:
      out.put("Transfer-Encoding: chunked\r\n");
      break;
    case Framing::kNone:
    case Framing::kUntilClose:
      break;
  }
  if (head.upgrade && context.forward_upgrade) {
    out.put("Connection: upgrade\r\n");
    out.field("Upgrade", head.upgrade_protocols);
  }
  if (context.headers.request_id && !request_id_forwarded && !context.request_id.empty()) {
    out.field("x-request-id", context.request_id);
  }
  if (forwarded) {
    if (forwarded_for_seen || !context.client_address.empty()) {
      out.put("x-forwarded-for: ");
      bool first = true;
      if (forwarded_for_seen) {
        for (const Field& field : head.fields) {
          if (!iequals(field.name, "x-forwarded-for") || field.value.empty()) continue;
          if (!first) out.put(", ");
          out.put(field.value);
          first = false;
        }
      }
      if (!context.client_address.empty()) {
        if (!first) out.put(", ");
        out.put(context.client_address);
      }
      out.put("\r\n");
    }
    if (!forwarded_proto_kept) {
      out.put(context.client_tls ? "x-forwarded-proto: https\r\n" : "x-forwarded-proto: http\r\n");
    }
  }
  if (context.ingress && context.headers.client_cert && !context.client_cert.empty()) {
    out.field("x-forwarded-client-cert", context.client_cert);
  }
  out.put("\r\n");
}

std::string_view standard_reason(uint16_t status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

ResponsePlan encode_response_head(const ResponseHead& head, const ResponseContext& context,
                                  std::string& buffer) {
  HeadWriter out(buffer, head_room(head.fields, head.reason.size()));
  out.put("HTTP/1.1 ");
  out.number(head.status);
  out.put(' ');
  out.put(head.reason.empty() ? standard_reason(head.status) : head.reason);
  out.put("\r\n");

  const HopByHop hop(head.fields);
  const bool interim = head.interim();
  // A response to HEAD and a 304 carry the Content-Length of the representation, not of
  // a body: forwarded as received (the parser validated it).
  const bool keep_content_length =
      !interim && head.framing == Framing::kNone && (context.request_is_head || head.status == 304);
  const bool replace_server = !interim && context.headers.server;
  const bool replace_service_time =
      !interim && context.headers.upstream_service_time && context.upstream_service_time_ms >= 0;
  for (const Field& field : head.fields) {
    if (hop.contains(field.name) || iequals(field.name, "transfer-encoding")) continue;
    if (iequals(field.name, "content-length") && !keep_content_length) continue;
    if (replace_server && iequals(field.name, "server")) continue;
    if (replace_service_time && iequals(field.name, "x-upstream-service-time")) continue;
    out.field(field.name, field.value);
  }
  if (interim) {
    out.put("\r\n");
    return {BodyFraming::kNone, false};
  }

  ResponsePlan plan;
  plan.close = context.close;
  const bool client_http11 = context.client_version == Version::kHttp11;
  if (head.switches_protocol) {
    plan.framing = BodyFraming::kTunnel;
    if (head.status == 101) {
      out.put("Connection: upgrade\r\n");
      const Field* upgrade = find_field(head.fields, "upgrade");
      if (upgrade != nullptr) out.field("Upgrade", upgrade->value);
    }
  } else {
    switch (head.framing) {
      case Framing::kNone:
        plan.framing = BodyFraming::kNone;
        break;
      case Framing::kContentLength:
        plan.framing = BodyFraming::kContentLength;
        out.put("Content-Length: ");
        out.number(head.content_length);
        out.put("\r\n");
        break;
      case Framing::kChunked:
      case Framing::kUntilClose:
        if (client_http11) {
          // Until-close bodies are chunked too: the client connection can stay open
          // although the upstream one closes.
          plan.framing = BodyFraming::kChunked;
          out.put("Transfer-Encoding: chunked\r\n");
        } else {
          plan.framing = BodyFraming::kUntilClose;
          plan.close = true;
        }
        break;
    }
    if (plan.close) {
      out.put("Connection: close\r\n");
    } else if (!client_http11) {
      out.put("Connection: keep-alive\r\n");
    }
  }
  if (context.headers.server) out.put("server: ringside\r\n");
  if (replace_service_time) {
    out.put("x-upstream-service-time: ");
    out.number(static_cast<uint64_t>(context.upstream_service_time_ms));
    out.put("\r\n");
  }
  out.put("\r\n");
  return plan;
}

void append_chunk_header(std::string& out, size_t size) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), size, 16);
  out.append(digits, static_cast<size_t>(result.ptr - digits));
  out += "\r\n";
}

void append_chunk_end(std::string& out) { out += "\r\n"; }

void append_chunk(std::string& out, std::string_view data) {
  if (data.empty()) return;
  append_chunk_header(out, data.size());
  out += data;
  append_chunk_end(out);
}

void append_last_chunk(std::string& out, std::span<const Field> trailers) {
  out += "0\r\n";
  const HopByHop hop(trailers);
  for (const Field& field : trailers) {
    if (hop.contains(field.name)) continue;
    append_field(out, field.name, field.value);
  }
  out += "\r\n";
}

}  // namespace ringside::http
