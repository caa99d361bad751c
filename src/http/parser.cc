// The HTTP/1.1 state machine behind RequestParser and ResponseParser. Every rule and the
// reason behind each decision are in docs/http-parser.md; comments here cite RFC 9112
// (messages) and RFC 9110 (semantics) where the RFC forces the choice.
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "ringside/http.h"

namespace ringside::http {
namespace {

// One byte-class table: a bit per character class, looked up once per byte.
enum : uint8_t {
  kTchar = 1,       // token characters (RFC 9110 5.6.2): field names, methods, codings
  kFieldValue = 2,  // HT, SP, VCHAR, obs-text: what a field value or reason may hold
  kTarget = 4,      // what a request-target may hold (VCHAR except '#'), see the docs
  kRegName = 8,     // unreserved and sub-delims (RFC 3986): a host name
  kHex = 16,
  kQdText = 32,  // quoted-string text of a chunk extension (RFC 9110 5.6.4)
};

constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    uint8_t v = 0;
    if (alpha || digit) v |= kTchar | kRegName;
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) v |= kFieldValue;
    if (c > 0x20 && c < 0x7f && c != '#') v |= kTarget;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kHex;
    if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
        (c >= 0x5d && c <= 0x7e) || c >= 0x80) {
      v |= kQdText;
    }
    t[static_cast<size_t>(c)] = v;
  }
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<uint8_t>(c)] |= kTchar;
  for (char c : std::string_view("-._~!$&'()*+,;=")) t[static_cast<uint8_t>(c)] |= kRegName;
  return t;
}

constexpr std::array<uint8_t, 256> kClasses = make_classes();

inline bool is(char c, uint8_t cls) { return (kClasses[static_cast<uint8_t>(c)] & cls) != 0; }

inline unsigned hex_value(char c) {
  if (c <= '9') return static_cast<unsigned>(c - '0');
  return static_cast<unsigned>((c | 0x20) - 'a' + 10);
}

bool all_tchar(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is(c, kTchar)) return false;
  }
  return true;
}

inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 5.6.1:
// empty elements are ignored). Stops and returns false when fn does.
template <typename Fn>
bool for_each_list_element(std::string_view list, Fn fn) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && !fn(element)) return false;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return true;
}

// True for "", "a,", ", a", "a, ,b": a list with an empty element.
bool has_empty_list_element(std::string_view list) {
  for (;;) {
    const size_t comma = list.find(',');
    if (trim_ows(list.substr(0, comma)).empty()) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

// "HTTP/1.1" -> 11. 0 when malformed, -1 when well-formed but neither 1.0 nor 1.1.
int parse_version(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
      v[7] < '0' || v[7] > '9') {
    return 0;
  }
  if (v[5] == '1' && (v[7] == '0' || v[7] == '1')) return 10 + (v[7] - '0');
  return -1;
}

// uri-host [ ":" port ] (RFC 3986): a reg-name or IP literal, no userinfo. The port, when
// present, is 1 to 5 digits.
bool valid_authority(std::string_view a, bool port_required, bool allow_empty) {
  if (a.empty()) return allow_empty && !port_required;
  size_t i = 0;
  if (a[0] == '[') {
    const size_t close = a.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (size_t k = 1; k < close; ++k) {
      if (!is(a[k], kHex) && a[k] != ':' && a[k] != '.') return false;
    }
    i = close + 1;
  } else {
    while (i < a.size() && a[i] != ':') {
      if (a[i] == '%') {
        if (a.size() - i < 3 || !is(a[i + 1], kHex) || !is(a[i + 2], kHex)) return false;
        i += 3;
        continue;
      }
      if (!is(a[i], kRegName)) return false;
      ++i;
    }
    if (i == 0) return false;
  }
  if (i == a.size()) return !port_required;
  if (a[i] != ':') return false;
  const std::string_view port = a.substr(i + 1);
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool is_known_coding(std::string_view coding) {
  return iequals(coding, "gzip") || iequals(coding, "x-gzip") || iequals(coding, "deflate") ||
         iequals(coding, "compress") || iequals(coding, "x-compress");
}

}  // namespace

Error to_error(const ParseError& error, Side side) {
  return make_error(ErrorKind::kProtocol, side, error.reason);
}

namespace detail {

const char* first_invalid_value_byte(const char* p, const char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHigh = kOnes * 0x80;
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    // A byte below 0x20, or one equal to 0x7f, sets its top bit here (the borrows only
    // start at such a byte, so the word's answer is exact). HTAB is below 0x20 but
    // valid: a word holding one is looked at byte by byte, as is the rest of the value.
    const uint64_t below_space = (word - kOnes * 0x20) & ~word & kHigh;
    const uint64_t del = word ^ (kOnes * 0x7f);
    if ((below_space | ((del - kOnes) & ~del & kHigh)) != 0) break;
    p += 8;
  }
  for (; p < end; ++p) {
    if (!is(*p, kFieldValue)) return p;
  }
  return end;
}

enum class ParserCore::State : uint8_t {
  kHead,
  kBodyLength,
  kBodyUntilClose,
  kChunkSizeStart,
  kChunkSizeDigits,
  kChunkExtNameStart,
  kChunkExtName,
  kChunkExtValueStart,
  kChunkExtToken,
  kChunkExtQuoted,
  kChunkExtQuotedPair,
  kChunkExtAfterQuoted,
  kChunkSizeLF,
  kChunkData,
  kChunkDataCR,
  kChunkDataLF,
  kTrailers,
  kCompletePending,
  kTunnel,
  kClosed,
  kDead,
};

ParserCore::ParserCore(const Limits& limits, bool response)
    : limits_(limits), response_mode_(response), state_(State::kHead) {}

void ParserCore::reset() {
  state_ = State::kHead;
  buf_.clear();
  buf_holds_section_ = false;
  section_open_ = false;
  buffering_ = false;
  error_ = {};
  next_response_to_ = RequestKind::kOther;
  current_response_to_ = RequestKind::kOther;
  start_message();
}

bool ParserCore::between_messages() const {
  return state_ == State::kHead && !buffering_ && !section_open_;
}

void ParserCore::release_head_buffer() {
  if (!between_messages()) return;
  std::string().swap(buf_);
  buf_holds_section_ = false;
}

bool ParserCore::set_error(uint16_t status, std::string_view reason) {
  error_ = ParseError{status_or_gateway(status), reason};
  state_ = State::kDead;
  return false;
}

void ParserCore::start_message() {
  fields_.clear();
  trailers_.clear();
  seen_ = Seen{};
  request_ = RequestHead{};
  response_ = ResponseHead{};
  remaining_ = 0;
  body_total_ = 0;
  chunk_size_ = 0;
  chunk_digits_ = 0;
  chunk_line_ = 0;
}

std::string_view ParserCore::start_line_too_long() const {
  return response_mode_ ? "status-line too long" : "request-line too long";
}

// Finds the end of a head (head=true) or trailer section in data[0, size), resuming where
// the previous call stopped. Every line must end in CRLF: a LF without CR before it is
// refused here, a CR anywhere else is refused by the character checks of the line.
ParserCore::Scan ParserCore::scan_lines(const char* data, size_t size, bool head) {
  for (;;) {
    const bool in_start_line = head && lines_ == 0;
    const void* nl = std::memchr(data + scan_pos_, '\n', size - scan_pos_);
    if (nl == nullptr) {
      scan_pos_ = size;
      // Even with its CRLF next, this start line would exceed the limit.
      if (in_start_line && size - line_start_ >= limits_.max_start_line) {
        set_error(414, start_line_too_long());
        return Scan::kError;
      }
      if (size > limits_.max_head_bytes) {
        set_error(431, head ? "header section too large" : "trailer section too large");
        return Scan::kError;
      }
      return Scan::kIncomplete;
    }
    const size_t lf = static_cast<size_t>(static_cast<const char*>(nl) - data);
    // Checks in the order an incremental feed meets them, so that the verdict does not
    // depend on where the input was split: a start line that was already too long before
    // its LF arrived, then the line ending, then the section size.
    if (in_start_line && lf - line_start_ >= limits_.max_start_line) {
      set_error(414, start_line_too_long());
      return Scan::kError;
    }
    if (lf == line_start_ || data[lf - 1] != '\r') {
      set_error(400, "bare LF line ending");
      return Scan::kError;
    }
    const size_t next = lf + 1;
    const size_t line_size = next - line_start_;
    if (next > limits_.max_head_bytes) {
      set_error(431, head ? "header section too large" : "trailer section too large");
      return Scan::kError;
    }
    if (in_start_line) {
      if (line_size == 2 && !response_mode_) {
        // RFC 9112 2.2: a server SHOULD ignore empty lines received before a request-line.
        section_begin_ = line_start_ = scan_pos_ = next;
        continue;
      }
    } else if (line_size == 2) {
      section_end_ = next;
      return Scan::kComplete;
    } else if (lines_ - (head ? 1 : 0) >= limits_.max_fields) {
      set_error(431, head ? "too many header fields" : "too many trailer fields");
      return Scan::kError;
    }
    ++lines_;
    line_start_ = scan_pos_ = next;
  }
}

// Takes a complete section from input[pos...] (in place) or, when it is split, through
// buf_. On kComplete, section is the section (without skipped leading empty lines) and pos
// is just past it.
ParserCore::Scan ParserCore::take_section(std::string_view input, size_t& pos, bool head,
                                          std::string_view& section) {
  if (!section_open_) {
    section_open_ = true;
    buffering_ = false;
    if (buf_holds_section_) {
      buf_.clear();
      buf_holds_section_ = false;
    }
    scan_pos_ = line_start_ = lines_ = section_begin_ = section_end_ = 0;
  }
  const char* data = input.data() + pos;
  const size_t avail = input.size() - pos;
  if (!buffering_) {
    const Scan r = scan_lines(data, std::min(avail, limits_.max_head_bytes + 1), head);
    if (r == Scan::kComplete) {
      section = std::string_view(data + section_begin_, section_end_ - section_begin_);
      pos += section_end_;
      section_open_ = false;
      return r;
    }
    if (r == Scan::kError) return r;
    // Incomplete and within the limit, so avail <= max_head_bytes: keep it all.
    pos = input.size();
    if (avail == 0) return r;
    if (buf_.capacity() < limits_.max_head_bytes + 1) buf_.reserve(limits_.max_head_bytes + 1);
    buf_.assign(data, avail);
    buffering_ = true;
    return r;
  }
  const size_t old = buf_.size();
  const size_t take = std::min(avail, limits_.max_head_bytes + 1 - old);
  buf_.append(data, take);
  const Scan r = scan_lines(buf_.data(), buf_.size(), head);
  if (r == Scan::kComplete) {
    section = std::string_view(buf_.data() + section_begin_, section_end_ - section_begin_);
    pos += section_end_ - old;
    buf_holds_section_ = true;
    buffering_ = false;
    section_open_ = false;
    return r;
  }
  pos += take;
  return r;
}

// Parses the field lines in [p, end) up to and including the empty line. The section scan
// already proved that every line ends in CRLF.
bool ParserCore::parse_fields(const char* p, const char* end, std::vector<Field>& out) {
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* eol = nl - 1;  // the CR
    if (eol == p) return true;
    // RFC 9112 5.2: obs-fold is refused (400) rather than replaced by SP.
    if (is_ows(*p)) return set_error(400, "obs-fold (line folding) in field section");
    const char* q = p;
    while (q < eol && is(*q, kTchar)) ++q;
    if (q == eol) return set_error(400, "field line without colon");
    if (*q != ':') {
      // RFC 9112 5.1: whitespace between field name and colon MUST be rejected (400).
      if (is_ows(*q)) return set_error(400, "whitespace between field name and colon");
      return set_error(400, "invalid character in field name");
    }
    if (q == p) return set_error(400, "empty field name");
    const char* v = q + 1;
    while (v < eol && is_ows(*v)) ++v;
    const char* e = eol;
    while (e > v && is_ows(e[-1])) --e;
    if (const char* bad = first_invalid_value_byte(v, e); bad != e) [[unlikely]] {
      return set_error(
          400, *bad == '\r' ? "bare CR in field value" : "control character in field value");
    }
    out.push_back(Field{std::string_view(p, static_cast<size_t>(q - p)),
                        std::string_view(v, static_cast<size_t>(e - v))});
    p = nl + 1;
  }
  return true;
}

bool ParserCore::check_transfer_coding_element(std::string_view coding) {
  if (!all_tchar(coding)) {
    seen_.te_malformed = true;
    return false;
  }
  if (iequals(coding, "chunked")) {
    if (seen_.te_chunked) seen_.te_chunked_twice = true;
    seen_.te_chunked = true;
    seen_.te_chunked_last = true;
    return true;
  }
  seen_.te_chunked_last = false;
  if (is_known_coding(coding)) {
    seen_.te_other_known = true;
  } else {
    seen_.te_unknown = true;
  }
  return true;
}

// Records what one head field means for framing, connection management and routing.
bool ParserCore::parse_field_semantics(const Field& field) {
  const std::string_view name = field.name;
  const std::string_view value = field.value;
  switch (name.size()) {
    case 4:
      if (!response_mode_ && iequals(name, "host")) {
        // RFC 9112 3.2: more than one Host field is answered 400.
        if (seen_.host) return set_error(400, "duplicate Host");
        seen_.host = true;
        seen_.host_value = value;
      }
      break;
    case 6:
      if (!response_mode_ && iequals(name, "expect") && iequals(value, "100-continue")) {
        seen_.expect_continue = true;
      }
      break;
    case 7:
      if (iequals(name, "upgrade") && !seen_.upgrade) {
        seen_.upgrade = true;
        seen_.upgrade_value = value;
      }
      break;
    case 10:
      if (iequals(name, "connection")) {
        const bool ok = for_each_list_element(value, [this](std::string_view option) {
          if (!all_tchar(option)) return false;
          if (iequals(option, "close")) seen_.conn_close = true;
          if (iequals(option, "keep-alive")) seen_.conn_keep_alive = true;
          if (iequals(option, "upgrade")) seen_.conn_upgrade = true;
          return true;
        });
        if (!ok) return set_error(400, "malformed Connection");
      }
      break;
    case 14:
      if (iequals(name, "content-length")) {
        // 1*DIGIT only: no sign, no spaces, no list. Identical duplicates are merged
        // (RFC 9110 8.6 allows it); differing ones are an attack or a broken peer.
        if (value.empty()) return set_error(400, "malformed Content-Length");
        if (value.size() > 19) {
          for (char c : value) {
            if (c < '0' || c > '9') return set_error(400, "malformed Content-Length");
          }
          return set_error(400, "Content-Length too large");
        }
        uint64_t n = 0;
        for (char c : value) {
          if (c < '0' || c > '9') return set_error(400, "malformed Content-Length");
          n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        if (seen_.content_length && seen_.content_length_text != value) {
          return set_error(400, "duplicate Content-Length with different values");
        }
        seen_.content_length = true;
        seen_.content_length_text = value;
        seen_.content_length_value = n;
      }
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) {
        // Unlike other lists, empty elements are refused here: RFC 9110 5.6.1 asks
        // recipients to skip them, but other parsers (h11, nginx) refuse
        // "Transfer-Encoding: , chunked", and no legitimate sender writes it.
        seen_.transfer_encoding = true;
        for_each_list_element(value, [this](std::string_view coding) {
          return check_transfer_coding_element(coding);
        });
        if (seen_.te_malformed || has_empty_list_element(value)) {
          return set_error(400, "malformed Transfer-Encoding");
        }
      }
      break;
    default:
      break;
  }
  return true;
}

bool ParserCore::parse_request_head(std::string_view head) {
  start_message();
  const char* p = head.data();
  const char* end = p + head.size();
  const char* nl = static_cast<const char*>(std::memchr(p, '\n', head.size()));
  const char* eol = nl - 1;

  // request-line = method SP request-target SP HTTP-version (exactly one SP each).
  const char* q = p;
  while (q < eol && is(*q, kTchar)) ++q;
  if (q == p) return set_error(400, "invalid method");
  if (q == eol) return set_error(400, "malformed request-line");
  if (*q != ' ') return set_error(400, "invalid character in method");
  const std::string_view method(p, static_cast<size_t>(q - p));
  const char* t = q + 1;
  const char* u = t;
  while (u < eol && *u != ' ') {
    if (!is(*u, kTarget)) return set_error(400, "invalid character in request-target");
    if (*u == '%') {
      if (eol - u < 3 || !is(u[1], kHex) || !is(u[2], kHex)) {
        return set_error(400, "invalid percent-encoding in request-target");
      }
      u += 3;
      continue;
    }
    ++u;
  }
  if (u == t) return set_error(400, "empty request-target");
  if (u == eol) return set_error(400, "missing HTTP version");  // HTTP/0.9
  const std::string_view target(t, static_cast<size_t>(u - t));
  const int version = parse_version(std::string_view(u + 1, static_cast<size_t>(eol - u - 1)));
  if (version == 0) return set_error(400, "malformed HTTP version");
  if (version < 0) return set_error(505, "HTTP version not supported");

  RequestHead& r = request_;
  r.method = method;
  r.target = target;
  r.version = version == 11 ? Version::kHttp11 : Version::kHttp10;

  // RFC 9112 3.2: the form follows the method.
  if (method == "CONNECT") {
    if (!valid_authority(target, true, false)) return set_error(400, "invalid CONNECT target");
    r.target_form = TargetForm::kAuthority;
    r.authority = target;
  } else if (target[0] == '/') {
    r.target_form = TargetForm::kOrigin;
  } else if (target == "*") {
    if (method != "OPTIONS") return set_error(400, "asterisk-form is only for OPTIONS");
    r.target_form = TargetForm::kAsterisk;
  } else {
    const size_t colon = target.find("://");
    if (colon == std::string_view::npos ||
        !(iequals(target.substr(0, colon), "http") || iequals(target.substr(0, colon), "https"))) {
      return set_error(400, "invalid request-target");
    }
    std::string_view rest = target.substr(colon + 3);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    if (!valid_authority(authority, false, false)) {
      return set_error(400, "invalid authority in request-target");
    }
    r.target_form = TargetForm::kAbsolute;
    r.authority = authority;
  }

  if (!parse_fields(nl + 1, end, fields_)) return false;
  for (const Field& f : fields_) {
    if (!parse_field_semantics(f)) return false;
  }
  r.fields = fields_;
  const bool v11 = r.version == Version::kHttp11;

  // RFC 9112 6.1 and 6.3: framing, the part where a disagreement between two parsers
  // becomes request smuggling.
  if (seen_.transfer_encoding) {
    if (seen_.content_length) return set_error(400, "Transfer-Encoding with Content-Length");
    if (!v11) return set_error(400, "Transfer-Encoding in an HTTP/1.0 message");
    if (seen_.te_chunked_twice) return set_error(400, "chunked applied more than once");
    if (seen_.te_chunked && !seen_.te_chunked_last) {
      return set_error(400, "chunked is not the final transfer coding");
    }
    if (seen_.te_unknown) return set_error(501, "unknown transfer coding");
    if (!seen_.te_chunked) return set_error(400, "chunked is not the final transfer coding");
    if (seen_.te_other_known) return set_error(501, "transfer coding other than chunked");
    r.framing = Framing::kChunked;
  } else if (seen_.content_length) {
    if (limits_.max_body != 0 && seen_.content_length_value > limits_.max_body) {
      return set_error(413, "body too large");
    }
    r.framing = Framing::kContentLength;
    r.content_length = seen_.content_length_value;
  }

  if (v11 && !seen_.host) return set_error(400, "missing Host");
  if (seen_.host) {
    if (!valid_authority(seen_.host_value, false, true)) return set_error(400, "invalid Host");
    if (r.target_form == TargetForm::kAbsolute || r.target_form == TargetForm::kAuthority) {
      if (!iequals(seen_.host_value, r.authority)) {
        return set_error(400, "Host differs from the request-target authority");
      }
    } else {
      r.authority = seen_.host_value;
    }
  }

  r.keep_alive = !seen_.conn_close && (v11 || seen_.conn_keep_alive);
  r.expect_continue = v11 && seen_.expect_continue;
  r.upgrade = seen_.upgrade && seen_.conn_upgrade;
  if (r.upgrade) r.upgrade_protocols = seen_.upgrade_value;
  return finish_head();
}

bool ParserCore::parse_response_head(std::string_view head) {
  start_message();
  const char* p = head.data();
  const char* end = p + head.size();
  const char* nl = static_cast<const char*>(std::memchr(p, '\n', head.size()));
  const char* eol = nl - 1;
  const size_t line = static_cast<size_t>(eol - p);

  // status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]; a missing final SP is
  // tolerated (RFC 9112 4 asks recipients to accept it), it cannot change the framing.
  if (line < 12 || p[8] != ' ' || (line > 12 && p[12] != ' ')) {
    return set_error(502, "malformed status-line");
  }
  const int version = parse_version(std::string_view(p, 8));
  if (version == 0) return set_error(502, "malformed HTTP version");
  if (version < 0) return set_error(502, "HTTP version not supported");
  unsigned status = 0;
  for (int i = 9; i < 12; ++i) {
    if (p[i] < '0' || p[i] > '9') return set_error(502, "invalid status code");
    status = status * 10 + static_cast<unsigned>(p[i] - '0');
  }
  if (status < 100 || status > 599) return set_error(502, "invalid status code");
  std::string_view reason;
  if (line > 12) {
    reason = std::string_view(p + 13, line - 13);
    for (char c : reason) {
      if (!is(c, kFieldValue)) return set_error(502, "invalid character in reason phrase");
    }
  }

  ResponseHead& r = response_;
  r.version = version == 11 ? Version::kHttp11 : Version::kHttp10;
  r.status = static_cast<uint16_t>(status);
  r.reason = reason;
  if (!parse_fields(nl + 1, end, fields_)) return false;
  for (const Field& f : fields_) {
    if (!parse_field_semantics(f)) return false;
  }
  r.fields = fields_;
  const bool v11 = r.version == Version::kHttp11;

  const RequestKind answers = next_response_to_;
  if (!r.interim()) next_response_to_ = RequestKind::kOther;
  current_response_to_ = answers;

  if (seen_.transfer_encoding) {
    if (seen_.content_length) return set_error(502, "Transfer-Encoding with Content-Length");
    if (!v11) return set_error(502, "Transfer-Encoding in an HTTP/1.0 message");
    if (!seen_.te_chunked || !seen_.te_chunked_last || seen_.te_chunked_twice || seen_.te_unknown ||
        seen_.te_other_known) {
      return set_error(502, "transfer coding other than a single chunked");
    }
    // RFC 9112 6.1: a server MUST NOT send Transfer-Encoding in a 1xx or 204 response.
    if (status < 200 || status == 204) {
      return set_error(502, "Transfer-Encoding in a 1xx or 204 response");
    }
  }
  if (status == 101 || (answers == RequestKind::kConnect && status >= 200 && status < 300)) {
    r.switches_protocol = true;
    r.framing = Framing::kNone;
  } else if (answers == RequestKind::kHead || status < 200 || status == 204 || status == 304) {
    r.framing = Framing::kNone;  // RFC 9112 6.3 rule 1
  } else if (seen_.transfer_encoding) {
    r.framing = Framing::kChunked;
  } else if (seen_.content_length) {
    if (limits_.max_body != 0 && seen_.content_length_value > limits_.max_body) {
      return set_error(502, "body too large");
    }
    r.framing = Framing::kContentLength;
    r.content_length = seen_.content_length_value;
  } else {
    r.framing = Framing::kUntilClose;
  }
  r.keep_alive = !seen_.conn_close && (v11 || seen_.conn_keep_alive) &&
                 r.framing != Framing::kUntilClose && !r.switches_protocol;
  return finish_head();
}

// Chooses the state after a parsed head.
bool ParserCore::finish_head() {
  const Framing framing = response_mode_ ? response_.framing : request_.framing;
  const uint64_t length = response_mode_ ? response_.content_length : request_.content_length;
  if (response_mode_ && response_.switches_protocol) {
    state_ = State::kTunnel;
  } else if (response_mode_ && response_.interim()) {
    state_ = State::kHead;  // the final response to the same request follows
  } else if (framing == Framing::kChunked) {
    state_ = State::kChunkSizeStart;
  } else if (framing == Framing::kUntilClose) {
    state_ = State::kBodyUntilClose;
  } else if (framing == Framing::kContentLength && length > 0) {
    remaining_ = length;
    state_ = State::kBodyLength;
  } else {
    state_ = State::kCompletePending;
  }
  return true;
}

// One byte of chunk framing (RFC 9112 7.1): chunk-size [ chunk-ext ] CRLF, or the CRLF
// after chunk data. No whitespace anywhere, extensions are name[=token|quoted-string].
bool ParserCore::parse_chunk_line_byte(char c) {
  if (++chunk_line_ > limits_.max_chunk_line) return set_error(400, "chunk-size line too long");
  switch (state_) {
    case State::kChunkSizeStart:
      if (!is(c, kHex)) return set_error(400, "invalid chunk size");
      chunk_size_ = hex_value(c);
      chunk_digits_ = 1;
      state_ = State::kChunkSizeDigits;
      return true;
    case State::kChunkSizeDigits:
      if (is(c, kHex)) {
        if (++chunk_digits_ > 16) return set_error(400, "chunk size too large");
        chunk_size_ = (chunk_size_ << 4) | hex_value(c);
      } else if (c == ';') {
        state_ = State::kChunkExtNameStart;
      } else if (c == '\r') {
        state_ = State::kChunkSizeLF;
      } else {
        return set_error(400, "invalid chunk size");
      }
      return true;
    case State::kChunkExtNameStart:
      if (!is(c, kTchar)) return set_error(400, "malformed chunk extension");
      state_ = State::kChunkExtName;
      return true;
    case State::kChunkExtName:
      if (is(c, kTchar)) return true;
      if (c == '=') {
        state_ = State::kChunkExtValueStart;
      } else if (c == ';') {
        state_ = State::kChunkExtNameStart;
      } else if (c == '\r') {
        state_ = State::kChunkSizeLF;
      } else {
        return set_error(400, "malformed chunk extension");
      }
      return true;
    case State::kChunkExtValueStart:
      if (c == '"') {
        state_ = State::kChunkExtQuoted;
      } else if (is(c, kTchar)) {
        state_ = State::kChunkExtToken;
      } else {
        return set_error(400, "malformed chunk extension");
      }
      return true;
    case State::kChunkExtToken:
      if (is(c, kTchar)) return true;
      if (c == ';') {
        state_ = State::kChunkExtNameStart;
      } else if (c == '\r') {
        state_ = State::kChunkSizeLF;
      } else {
        return set_error(400, "malformed chunk extension");
      }
      return true;
    case State::kChunkExtQuoted:
      if (c == '"') {
        state_ = State::kChunkExtAfterQuoted;
      } else if (c == '\\') {
        state_ = State::kChunkExtQuotedPair;
      } else if (!is(c, kQdText)) {
        return set_error(400, "malformed chunk extension");
      }
      return true;
    case State::kChunkExtQuotedPair:
      if (!is(c, kFieldValue)) return set_error(400, "malformed chunk extension");
      state_ = State::kChunkExtQuoted;
      return true;
    case State::kChunkExtAfterQuoted:
      if (c == ';') {
        state_ = State::kChunkExtNameStart;
      } else if (c == '\r') {
        state_ = State::kChunkSizeLF;
      } else {
        return set_error(400, "malformed chunk extension");
      }
      return true;
    case State::kChunkSizeLF:
      if (c != '\n') return set_error(400, "bare CR in chunk framing");
      chunk_line_ = 0;
      if (chunk_size_ == 0) {
        state_ = State::kTrailers;
        return true;
      }
      if (chunk_size_ > std::numeric_limits<uint64_t>::max() - body_total_ ||
          (limits_.max_body != 0 && body_total_ + chunk_size_ > limits_.max_body)) {
        return set_error(413, "body too large");
      }
      body_total_ += chunk_size_;
      remaining_ = chunk_size_;
      chunk_size_ = 0;
      chunk_digits_ = 0;
      state_ = State::kChunkData;
      return true;
    case State::kChunkDataCR:
      if (c != '\r') return set_error(400, "missing CRLF after chunk data");
      state_ = State::kChunkDataLF;
      return true;
    case State::kChunkDataLF:
      if (c != '\n') return set_error(400, "missing CRLF after chunk data");
      chunk_line_ = 0;
      state_ = State::kChunkSizeStart;
      return true;
    default:
      return set_error(500, "internal: not in chunk framing");
  }
}

Step ParserCore::parse(std::string_view input) {
  size_t pos = 0;
  for (;;) {
    switch (state_) {
      case State::kHead: {
        std::string_view section;
        const Scan r = take_section(input, pos, true, section);
        if (r == Scan::kIncomplete) return {Event::kNeedMore, input.size(), {}};
        if (r == Scan::kError) return {Event::kError, pos, {}};
        const bool ok = response_mode_ ? parse_response_head(section) : parse_request_head(section);
        return {ok ? Event::kHead : Event::kError, pos, {}};
      }
      case State::kBodyLength:
      case State::kChunkData: {
        if (pos == input.size()) return {Event::kNeedMore, pos, {}};
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
        remaining_ -= n;
        if (remaining_ == 0) {
          state_ = state_ == State::kChunkData ? State::kChunkDataCR : State::kCompletePending;
        }
        return {Event::kBody, pos + n, input.substr(pos, n)};
      }
      case State::kBodyUntilClose: {
        if (pos == input.size()) return {Event::kNeedMore, pos, {}};
        const size_t n = input.size() - pos;
        if (limits_.max_body != 0 && body_total_ + n > limits_.max_body) {
          set_error(413, "body too large");
          return {Event::kError, pos, {}};
        }
        body_total_ += n;
        return {Event::kBody, input.size(), input.substr(pos)};
      }
      case State::kTrailers: {
        std::string_view section;
        const Scan r = take_section(input, pos, false, section);
        if (r == Scan::kIncomplete) return {Event::kNeedMore, input.size(), {}};
        if (r == Scan::kError) return {Event::kError, pos, {}};
        if (!parse_fields(section.data(), section.data() + section.size(), trailers_)) {
          return {Event::kError, pos, {}};
        }
        // Fields that frame or route the message have no business in a trailer section
        // (RFC 9110 6.5.1); a recipient that merged them would be misled.
        for (const Field& f : trailers_) {
          if (iequals(f.name, "content-length") || iequals(f.name, "transfer-encoding") ||
              iequals(f.name, "host")) {
            set_error(400, "framing field in trailer section");
            return {Event::kError, pos, {}};
          }
        }
        state_ = State::kHead;
        return {Event::kMessageComplete, pos, {}};
      }
      case State::kCompletePending:
        state_ = State::kHead;
        return {Event::kMessageComplete, pos, {}};
      case State::kTunnel:
        return {Event::kTunnel, pos, {}};
      case State::kClosed:
        set_error(400, "data after the connection closed");
        return {Event::kError, pos, {}};
      case State::kDead:
        return {Event::kError, pos, {}};
      default:
        // Chunk framing, byte by byte: these lines are a few bytes long.
        if (pos == input.size()) return {Event::kNeedMore, pos, {}};
        if (!parse_chunk_line_byte(input[pos++])) return {Event::kError, pos, {}};
        break;
    }
  }
}

Step ParserCore::finish() {
  switch (state_) {
    case State::kHead:
      if (!section_open_ || !buffering_) {
        state_ = State::kClosed;
        return {Event::kNeedMore, 0, {}};
      }
      set_error(400, "connection closed inside a message head");
      return {Event::kError, 0, {}};
    case State::kBodyUntilClose:
    case State::kCompletePending:
      state_ = State::kClosed;
      return {Event::kMessageComplete, 0, {}};
    case State::kTunnel:
      return {Event::kTunnel, 0, {}};
    case State::kClosed:
      return {Event::kNeedMore, 0, {}};
    case State::kDead:
      return {Event::kError, 0, {}};
    default:
      set_error(400, "connection closed inside a message body");
      return {Event::kError, 0, {}};
  }
}

}  // namespace detail

}  // namespace ringside::http
