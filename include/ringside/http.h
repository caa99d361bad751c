// A strict, incremental, zero-copy HTTP/1.1 parser (RFC 9112) for the proxy's HTTP codec.
//
// Input is pushed in arbitrary slices (split anywhere, even byte by byte). A message head
// is parsed in place when it arrives in one slice; when it is split, the parser keeps the
// partial head in one bounded buffer of its own (Limits::max_head_bytes). Bodies are
// streamed: every kBody step hands out payload bytes that point into the caller's input.
// Chunked bodies are decoded (chunk framing and extensions are validated and dropped), so
// the proxy re-emits a normalized head and re-frames the payload: whatever the upstream
// parser is, it sees only framing that ringside produced.
//
// Strictness is the point: anything another parser could read differently (Content-Length
// with Transfer-Encoding, obs-fold, bare CR or LF, whitespace before the colon, a coding
// other than one final "chunked", ...) is rejected, never repaired. Every error carries the
// status the proxy answers with and a short reason; after an error the parser is dead.
// docs/http-parser.md lists every rule and decision.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/result.h"

namespace ringside::http {

// Bounds on what one peer can make the parser hold or accept.
struct Limits {
  // request-line or status-line including CRLF; a longer request-line is answered 414.
  size_t max_start_line = 8 * 1024;
  // The whole head (start line, field lines, empty line), and separately the trailer
  // section; larger is answered 431. This is also the most the parser ever buffers.
  size_t max_head_bytes = 32 * 1024;
  // Field lines in the head, and separately in the trailer section (431).
  size_t max_fields = 100;
  // A chunk-size line including extensions and CRLF (400).
  size_t max_chunk_line = 1024;
  // Largest accepted payload (Content-Length, or the sum of the chunks); 0 = no limit (413).
  uint64_t max_body = 0;
};

enum class Version : uint8_t { kHttp10, kHttp11 };

// How the body of a message is delimited.
enum class Framing : uint8_t {
  kNone,           // no body: a request without Content-Length/Transfer-Encoding, or a
                   // 1xx/204/304 response or a response to HEAD
  kContentLength,  // exactly content_length bytes (possibly 0)
  kChunked,        // Transfer-Encoding: chunked
  kUntilClose,     // responses only: the body ends when the upstream closes
};

// The request-target forms of RFC 9112 section 3.2.
enum class TargetForm : uint8_t {
  kOrigin,     // "/path?query"
  kAbsolute,   // "http://authority/path?query"
  kAuthority,  // "host:port", CONNECT only
  kAsterisk,   // "*", OPTIONS only
};

// One field line, as received (name case preserved, value without surrounding OWS).
struct Field {
  std::string_view name;
  std::string_view value;
};

// Why a message was refused. status is what the proxy answers: 400, 413, 414, 431, 501
// or 505 for requests; always 502 for responses (the upstream broke the protocol).
struct ParseError {
  uint16_t status = 0;
  std::string_view reason;  // static text, e.g. "Transfer-Encoding with Content-Length"
};

// The error as the data path's Error (kind kProtocol, the given side).
Error to_error(const ParseError& error, Side side);

// A parsed request head. Every string_view and the field span point into the input of the
// parse() call that returned kHead or into the parser's buffer: they stay valid until the
// next parse(), finish() or reset() call (and while that input is alive).
struct RequestHead {
  std::string_view method;  // case-sensitive token, e.g. "GET"
  std::string_view target;  // the request-target as received
  TargetForm target_form = TargetForm::kOrigin;
  Version version = Version::kHttp11;
  std::span<const Field> fields;
  // The authority the request is for: the target's authority in absolute and authority
  // form (Host must then be equal to it), else the Host value (may be empty; empty too
  // for an HTTP/1.0 request without Host).
  std::string_view authority;
  Framing framing = Framing::kNone;  // kNone, kContentLength or kChunked
  uint64_t content_length = 0;       // with kContentLength
  // The connection may carry another request after this one: HTTP/1.1 without
  // "Connection: close", HTTP/1.0 with "Connection: keep-alive".
  bool keep_alive = true;
  bool expect_continue = false;  // "Expect: 100-continue" in an HTTP/1.1 request
  // An Upgrade field is present and Connection lists "upgrade"; upgrade_protocols holds
  // the Upgrade value. The request parser keeps parsing HTTP after the message: stop
  // feeding it if the response switches protocols.
  bool upgrade = false;
  std::string_view upgrade_protocols;

  bool is_head() const { return method == "HEAD"; }
  bool is_connect() const { return method == "CONNECT"; }
};

// A parsed response head; same lifetime rules as RequestHead.
struct ResponseHead {
  Version version = Version::kHttp11;
  uint16_t status = 0;      // 100..599
  std::string_view reason;  // may be empty
  std::span<const Field> fields;
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;  // false for kUntilClose and for "Connection: close"
  // 101, or a 2xx answer to CONNECT: the bytes after the head belong to another protocol.
  bool switches_protocol = false;

  // A 1xx other than 101: another response head to the same request follows.
  bool interim() const { return status < 200 && status != 101; }
};

// What one parse() call produced.
enum class Event : uint8_t {
  kNeedMore,         // all of the input was consumed and nothing else is ready
  kHead,             // head() is valid
  kBody,             // Step::body holds payload bytes
  kMessageComplete,  // the message ended; trailers() holds a chunked body's trailer fields
  kTunnel,           // after a protocol switch: the bytes that follow are not HTTP (responses)
  kError,            // error() says why; the parser is dead
};

struct Step {
  Event event = Event::kNeedMore;
  // Input bytes used by this call; drop them before the next call. Every consumed byte
  // belongs to the current message (its head, framing or payload).
  size_t consumed = 0;
  // With kBody: payload bytes inside the input (chunk framing already removed).
  std::string_view body;
};

// The kind of request a response answers; it changes how the response is framed.
enum class RequestKind : uint8_t { kOther, kHead, kConnect };

namespace detail {

// The first byte of [p, end) that a field value may not hold (a control character other
// than HTAB, or DEL), or end. Eight bytes a step (src/http/parser.cc); public for tests.
const char* first_invalid_value_byte(const char* p, const char* end);

// The state machine shared by RequestParser and ResponseParser (src/http/parser.cc).
class ParserCore {
 public:
  ParserCore(const Limits& limits, bool response);

  Step parse(std::string_view input);
  Step finish();
  void reset();
  // Between messages with nothing read of the next one: the parser holds no state a
  // fresh parser would not have, so its owner may free it or give it to another
  // connection.
  bool between_messages() const;
  // Between messages: frees the partial-head buffer (Limits::max_head_bytes, allocated
  // the first time a head arrives split) and keeps the small field arrays.
  void release_head_buffer();

  const Limits& limits() const { return limits_; }

  // Message state, filled by the state machine; read by the two public parsers.
  RequestHead request_;
  ResponseHead response_;
  std::vector<Field> fields_;
  std::vector<Field> trailers_;
  ParseError error_;
  RequestKind next_response_to_ = RequestKind::kOther;

 private:
  enum class State : uint8_t;
  enum class Scan : uint8_t { kComplete, kIncomplete, kError };

  uint16_t status_or_gateway(uint16_t status) const { return response_mode_ ? 502 : status; }
  Scan take_section(std::string_view input, size_t& pos, bool head, std::string_view& section);
  Scan scan_lines(const char* data, size_t size, bool head);
  bool parse_request_head(std::string_view head);
  bool parse_response_head(std::string_view head);
  bool parse_fields(const char* p, const char* end, std::vector<Field>& out);
  bool parse_field_semantics(const Field& field);
  bool check_transfer_coding_element(std::string_view coding);
  bool parse_chunk_line_byte(char c);
  bool set_error(uint16_t status, std::string_view reason);
  std::string_view start_line_too_long() const;
  bool finish_head();
  void start_message();

  Limits limits_;
  bool response_mode_;
  State state_;

  // The partial head or trailer section, kept only when a section arrives split.
  std::string buf_;
  bool buf_holds_section_ = false;
  size_t scan_pos_ = 0;        // where the search for the next LF resumes
  size_t line_start_ = 0;      // start of the line being scanned
  size_t lines_ = 0;           // complete lines of the section so far (start line included)
  size_t section_begin_ = 0;   // after skipped empty lines before a request-line
  size_t section_end_ = 0;     // just past the empty line that ends the section
  bool section_open_ = false;  // a head or trailer section is being scanned
  bool buffering_ = false;     // its first bytes are in buf_

  // Semantics collected while reading the fields of one head.
  struct Seen {
    bool host = false;
    bool content_length = false;
    bool transfer_encoding = false;
    bool te_chunked = false;        // "chunked" was listed
    bool te_chunked_last = false;   // ... and is the last coding so far
    bool te_chunked_twice = false;  // or listed more than once
    bool te_other_known = false;    // gzip, deflate, compress
    bool te_unknown = false;
    bool te_malformed = false;
    bool conn_close = false;
    bool conn_keep_alive = false;
    bool conn_upgrade = false;
    bool upgrade = false;
    bool expect_continue = false;
    uint64_t content_length_value = 0;
    std::string_view content_length_text;
    std::string_view host_value;
    std::string_view upgrade_value;
  } seen_;

  uint64_t remaining_ = 0;   // payload left in the Content-Length body or current chunk
  uint64_t body_total_ = 0;  // payload so far (max_body)
  uint64_t chunk_size_ = 0;
  size_t chunk_digits_ = 0;
  size_t chunk_line_ = 0;  // bytes of the chunk-size line so far
  RequestKind current_response_to_ = RequestKind::kOther;
};

}  // namespace detail

// Parses the requests of one downstream connection, pipelined ones included.
//
//   for (;;) {
//     Step step = parser.parse(input);
//     input.remove_prefix(step.consumed);
//     switch (step.event) { case Event::kNeedMore: /* read more */ ... }
//   }
//
// kNeedMore is returned exactly when the whole input was consumed and nothing is
// pending, so a loop until kNeedMore sees every event, including the kMessageComplete of
// a message without body. Holds no allocation per request once warmed up.
class RequestParser {
 public:
  explicit RequestParser(const Limits& limits = {}) : core_(limits, false) {}

  // Consumes input from its start; one event per call.
  Step parse(std::string_view input) { return core_.parse(input); }
  // The peer closed its side. kNeedMore: clean close between messages; kError: a message
  // was cut short.
  Step finish() { return core_.finish(); }
  // Forgets everything (after an error, or to reuse the object); keeps the buffers.
  void reset() { core_.reset(); }
  // No request is half-read: the parser could be replaced by a fresh one (an idle
  // connection frees it and its buffers).
  bool between_messages() const { return core_.between_messages(); }
  void release_head_buffer() { core_.release_head_buffer(); }

  const RequestHead& head() const { return core_.request_; }
  std::span<const Field> trailers() const { return core_.trailers_; }
  const ParseError& error() const { return core_.error_; }
  const Limits& limits() const { return core_.limits(); }

 private:
  detail::ParserCore core_;
};

// Parses the responses of one upstream connection. Responses to HEAD have no body and a
// 2xx to CONNECT opens a tunnel, so tell the parser which request the next response
// answers before feeding it its head (expect_response_to); the kind applies to the 1xx
// heads and the final head of that response and falls back to RequestKind::kOther as soon
// as the final (non-1xx) head is parsed.
class ResponseParser {
 public:
  explicit ResponseParser(const Limits& limits = {}) : core_(limits, true) {}

  void expect_response_to(RequestKind kind) { core_.next_response_to_ = kind; }
  Step parse(std::string_view input) { return core_.parse(input); }
  // The upstream closed: completes a kUntilClose body (kMessageComplete), kNeedMore
  // between messages, kError when a message was cut short.
  Step finish() { return core_.finish(); }
  void reset() { core_.reset(); }

  const ResponseHead& head() const { return core_.response_; }
  std::span<const Field> trailers() const { return core_.trailers_; }
  const ParseError& error() const { return core_.error_; }
  const Limits& limits() const { return core_.limits(); }

 private:
  detail::ParserCore core_;
};

// The hop-by-hop fields a proxy drops before forwarding (RFC 9110 section 7.6.1):
// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade.
std::span<const std::string_view> fixed_hop_by_hop_fields();

// True when name (any case) is one of fixed_hop_by_hop_fields() or is listed by one of the
// Connection fields in fields.
bool is_hop_by_hop(std::string_view name, std::span<const Field> fields);

// Every hop-by-hop name of a message: the fixed set that is present, then each option the
// Connection fields list (as spelled there; no duplicates removed). Clears out first.
void hop_by_hop_names(std::span<const Field> fields, std::vector<std::string_view>& out);

// Case-insensitive ASCII equality, as field names and tokens compare.
// Inline: header names are compared against fixed names several times per field on
// every request, and most comparisons end at the size check.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x | 0x20);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y | 0x20);
    if (x != y) return false;
  }
  return true;
}

}  // namespace ringside::http
