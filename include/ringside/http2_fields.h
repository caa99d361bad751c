// Header fields on the HTTP/2 side of the proxy: owned field lists and the pure
// translations between a neutral head that came from (or goes to) HTTP/1.1 and one that
// goes to (or came from) HTTP/2, per RFC 9113 section 8.2 and 8.3.
//
// A neutral head is a list of http::Field with the request or response control data as
// pseudo-header fields first (":method", ":scheme", ":authority", ":path" or ":status").
// Nothing here depends on nghttp2, so the HTTP/1.1 codecs can call it too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/http.h"
#include "ringside/http_proxy.h"

namespace ringside::http2 {

using http::Field;

// A list of fields whose names and values are copied into one buffer the list owns.
// fields() hands out views that stay valid until the next add() or clear().
class OwnedFields {
 public:
  void add(std::string_view name, std::string_view value);
  // Adds name in lower case (ASCII): HTTP/2 field names are lower case on the wire.
  void add_lowercase(std::string_view name, std::string_view value);
  // Forgets the fields, keeps the capacity.
  void clear();
  // Forgets the fields and gives back capacity beyond keep_bytes (an idle connection
  // should not pin the largest head it ever saw).
  void clear_and_trim(size_t keep_bytes);

  std::span<const Field> fields() const;
  size_t size() const { return spans_.size(); }
  bool empty() const { return spans_.empty(); }
  // The bytes of names and values held.
  size_t bytes() const { return bytes_.size(); }

 private:
  struct Span {
    uint32_t name_at, name_len, value_at, value_len;
  };
  std::string bytes_;
  std::vector<Span> spans_;
  mutable std::vector<Field> views_;
  mutable bool views_stale_ = false;
};

// A pseudo-header field name (":method", ":status", ...).
inline bool is_pseudo(std::string_view name) { return !name.empty() && name.front() == ':'; }

// A content-length or :status value: 1 to 19 decimal digits, nothing else. False leaves
// out untouched.
bool parse_decimal(std::string_view text, uint64_t& out);

// Whether text holds a byte 'A'..'Z' (eight bytes per step: a head's names are checked
// before each submit).
bool has_uppercase(std::string_view text);

// True for the fields RFC 9113 section 8.2.2 forbids in HTTP/2: Connection, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade (any case). TE is handled apart: it is
// allowed with the value "trailers" only.
bool is_connection_specific(std::string_view name);

// A head bound for HTTP/2 (from HTTP/1.1, or built by the proxy). Clears out, then:
// pseudo-header fields first in their input order (":authority" made from the first Host
// field when absent; Host fields are dropped either way, RFC 9113 8.3.1), then the regular
// fields with lower-case names, without the connection-specific fields, the fields named
// by a Connection field, and TE unless its value is "trailers" (sent as "te: trailers").
void to_http2_fields(std::span<const Field> in, OwnedFields& out);

// A head that came over HTTP/2, bound for HTTP/1.1. Clears out, then: the pseudo-header
// fields in their input order, "host" from ":authority" when the head has no Host field
// (RFC 9113 8.3.1), then the regular fields in their order, with every "cookie" crumb
// joined into one "cookie" field at the place of the first, separated by "; "
// (RFC 9113 8.2.3). out views in's bytes (in must outlive it), and joined's for a cookie
// of several crumbs: nothing else is copied.
void to_http1_fields(std::span<const Field> in, std::vector<Field>& out, std::string& joined);

// A response head from an HTTP/1.1 upstream, bound for an HTTP/2 client (RFC 9113
// 8.3.2). Clears out, then: ":status"; the fields encode_response_head would forward to
// an HTTP/1.1 client (hop-by-hop and connection-specific fields dropped, Server and
// x-upstream-service-time replaced as context.headers says), names lower-cased;
// content-length when the body has that length (or, on a response to HEAD and a 304,
// describes the representation). An interim head (1xx) gets ":status" and its end-to-end
// fields only. Returns true when a body follows in DATA frames (the head's framing is not
// kNone, nor a Content-Length of 0: such a response is its HEADERS with END_STREAM); a 101 or a 2xx
// to CONNECT has no meaning on HTTP/2 and is the caller's to refuse.
bool to_http2_response(const http::ResponseHead& head, const http::ResponseContext& context,
                       OwnedFields& out);

// The response the proxy makes itself (http::make_local_response) as HTTP/2 fields:
// ":status", content-type: text/plain, content-length, server, x-request-id. The body
// ("<body>\n") is the caller's to send unless response.head_request.
void to_http2_local_response(const http::LocalResponse& response, OwnedFields& out);

}  // namespace ringside::http2
