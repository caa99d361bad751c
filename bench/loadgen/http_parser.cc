#include "http_parser.h"

#include <cstring>

namespace ringside::bench {

namespace {

bool iequals_prefix(std::string_view line, std::string_view lower_prefix) {
  if (line.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = line[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

bool icontains(std::string_view text, std::string_view lower_word) {
  for (size_t i = 0; i + lower_word.size() <= text.size(); ++i) {
    if (iequals_prefix(text.substr(i), lower_word)) return true;
  }
  return false;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

void ResponseParser::reset(bool head_request) {
  state_ = State::kHead;
  head_request_ = head_request;
  keep_alive_ = true;
  status_code_ = 0;
  remaining_ = 0;
  head_bytes_ = 0;
  body_bytes_ = 0;
  head_.clear();
  line_.clear();
  error_ = "";
}

// One pass over the lines: finds the end of the head and reads the headers on the way
// (memchr per line rather than a search for CRLFCRLF followed by a second pass).
ResponseParser::HeadScan ResponseParser::scan_head(const char* data, size_t len) {
  const char* end = data + len;
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', len));
  if (nl == nullptr) return HeadScan::kIncomplete;
  std::string_view status_line(data, static_cast<size_t>(nl - data));
  if (!status_line.empty() && status_line.back() == '\r') status_line.remove_suffix(1);
  // "HTTP/1.1 200 OK": the version, one space, three digits, then a space or nothing.
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    error_ = "malformed status line";
    return HeadScan::kError;
  }
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    char c = status_line[i];
    if (c < '0' || c > '9') {
      error_ = "malformed status code";
      return HeadScan::kError;
    }
    code = code * 10 + (c - '0');
  }
  bool http10 = status_line[7] == '0';
  bool have_length = false;
  bool chunked = false;
  bool transfer_encoding = false;
  bool connection_close = false;
  bool connection_keep_alive = false;
  uint64_t length = 0;
  const char* line = nl + 1;
  for (;;) {
    nl = static_cast<const char*>(std::memchr(line, '\n', static_cast<size_t>(end - line)));
    if (nl == nullptr) return HeadScan::kIncomplete;
    std::string_view header(line, static_cast<size_t>(nl - line));
    line = nl + 1;
    if (!header.empty() && header.back() == '\r') header.remove_suffix(1);
    if (header.empty()) break;
    // Only three headers matter; the name's length picks the candidate before any
    // character is compared.
    size_t colon = header.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = header.substr(0, colon);
    if (name.size() != 14 && name.size() != 10 && name.size() != 17) continue;
    std::string_view value = trim(header.substr(colon + 1));
    if (name.size() == 14 && iequals_prefix(name, "content-length")) {
      if (value.empty()) {
        error_ = "empty Content-Length";
        return HeadScan::kError;
      }
      uint64_t parsed = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || parsed > (UINT64_MAX - 9) / 10) {
          error_ = "malformed Content-Length";
          return HeadScan::kError;
        }
        parsed = parsed * 10 + static_cast<uint64_t>(c - '0');
      }
      if (have_length && parsed != length) {
        error_ = "conflicting Content-Length headers";
        return HeadScan::kError;
      }
      have_length = true;
      length = parsed;
    } else if (name.size() == 10 && iequals_prefix(name, "connection")) {
      if (value.size() == 10 && iequals_prefix(value, "keep-alive")) {
        connection_keep_alive = true;
      } else if (value.size() == 5 && iequals_prefix(value, "close")) {
        connection_close = true;
      } else {  // a list such as "Upgrade, close"
        if (icontains(value, "close")) connection_close = true;
        if (icontains(value, "keep-alive")) connection_keep_alive = true;
      }
    } else if (name.size() == 17 && iequals_prefix(name, "transfer-encoding")) {
      transfer_encoding = true;
      // Chunked must be the final coding (RFC 9112 6.1); anything else is close-delimited.
      chunked = value.size() >= 7 && iequals_prefix(value.substr(value.size() - 7), "chunked");
    }
  }

  head_length_ = static_cast<size_t>(line - data);
  head_bytes_ += head_length_;
  status_code_ = code;
  keep_alive_ = http10 ? connection_keep_alive && !connection_close : !connection_close;
  if (code >= 100 && code < 200 && code != 101) {
    state_ = State::kHead;  // interim response: the final one follows
  } else if (head_request_ || code == 204 || code == 304 || (code >= 100 && code < 200)) {
    state_ = State::kDone;
  } else if (chunked) {
    state_ = State::kChunkSize;
  } else if (have_length && !transfer_encoding) {
    remaining_ = length;
    state_ = length == 0 ? State::kDone : State::kBodyLength;
  } else {
    keep_alive_ = false;
    state_ = State::kUntilClose;
  }
  return HeadScan::kComplete;
}

bool ResponseParser::take_line(const char* data, size_t len, size_t* used) {
  const void* lf = std::memchr(data, '\n', len);
  if (lf == nullptr) {
    line_.append(data, len);
    *used = len;
    return false;
  }
  size_t n = static_cast<size_t>(static_cast<const char*>(lf) - data);
  line_.append(data, n);
  *used = n + 1;
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  return true;
}

ResponseParser::Status ResponseParser::feed(const char* data, size_t len, size_t* consumed) {
  size_t pos = 0;
  while (true) {
    if (state_ == State::kDone) {
      *consumed = pos;
      return Status::kComplete;
    }
    if (pos == len && state_ != State::kDone) {
      *consumed = pos;
      return Status::kNeedMore;
    }
    const char* p = data + pos;
    size_t avail = len - pos;
    switch (state_) {
      case State::kHead: {
        if (head_.empty()) {
          HeadScan scan = scan_head(p, avail);
          if (scan == HeadScan::kError) return Status::kError;
          if (scan == HeadScan::kComplete) {
            pos += head_length_;
            break;
          }
          if (avail > kMaxHeadBytes) return fail("response head too large");
          head_.assign(p, avail);
          pos = len;
          break;
        }
        // A head split across reads: rescan the joined bytes (rare, so simple).
        size_t old_size = head_.size();
        head_.append(p, avail);
        HeadScan scan = scan_head(head_.data(), head_.size());
        if (scan == HeadScan::kError) return Status::kError;
        if (scan == HeadScan::kIncomplete) {
          if (head_.size() > kMaxHeadBytes) return fail("response head too large");
          pos = len;
          break;
        }
        pos += head_length_ - old_size;
        head_.clear();
        break;
      }
      case State::kBodyLength: {
        size_t take = avail < remaining_ ? avail : static_cast<size_t>(remaining_);
        remaining_ -= take;
        body_bytes_ += take;
        pos += take;
        if (remaining_ == 0) state_ = State::kDone;
        break;
      }
      case State::kChunkSize: {
        size_t used = 0;
        bool complete = take_line(p, avail, &used);
        pos += used;
        if (!complete) {
          if (line_.size() > 1024) return fail("chunk size line too long");
          break;
        }
        uint64_t size = 0;
        size_t digits = 0;
        for (char c : line_) {
          int v;
          if (c >= '0' && c <= '9') {
            v = c - '0';
          } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = (c | 0x20) - 'a' + 10;
          } else {
            break;
          }
          if (size > (UINT64_MAX >> 4)) return fail("chunk size too large");
          size = size * 16 + static_cast<uint64_t>(v);
          ++digits;
        }
        if (digits == 0 || (digits < line_.size() && line_[digits] != ';' && line_[digits] != ' ' &&
                            line_[digits] != '\t')) {
          return fail("malformed chunk size");
        }
        line_.clear();
        if (size == 0) {
          state_ = State::kTrailers;
        } else {
          remaining_ = size;
          state_ = State::kChunkData;
        }
        break;
      }
      case State::kChunkData: {
        size_t take = avail < remaining_ ? avail : static_cast<size_t>(remaining_);
        remaining_ -= take;
        body_bytes_ += take;
        pos += take;
        if (remaining_ == 0) state_ = State::kChunkDataEnd;
        break;
      }
      case State::kChunkDataEnd: {
        size_t used = 0;
        bool complete = take_line(p, avail, &used);
        pos += used;
        if (!complete) {
          if (line_.size() > 1) return fail("missing CRLF after chunk data");
          break;
        }
        if (!line_.empty()) return fail("missing CRLF after chunk data");
        state_ = State::kChunkSize;
        break;
      }
      case State::kTrailers: {
        size_t used = 0;
        bool complete = take_line(p, avail, &used);
        pos += used;
        if (!complete) {
          if (line_.size() > kMaxHeadBytes) return fail("trailers too large");
          break;
        }
        if (line_.empty()) state_ = State::kDone;
        line_.clear();
        break;
      }
      case State::kUntilClose:
        body_bytes_ += avail;
        pos = len;
        break;
      case State::kDone:
        break;
    }
  }
}

ResponseParser::Status ResponseParser::finish_at_eof() {
  if (state_ == State::kUntilClose || state_ == State::kDone) {
    state_ = State::kDone;
    return Status::kComplete;
  }
  if (!started()) return Status::kNeedMore;
  return fail("connection closed before the response ended");
}

}  // namespace ringside::bench
