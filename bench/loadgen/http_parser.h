// ResponseParser: an incremental HTTP/1.1 response parser for the load generator. It
// finds where each response ends (Content-Length, chunked, or end of connection), skips
// interim 1xx responses, and reports the status and whether the connection stays open.
// Bytes can arrive split anywhere; body bytes are counted, never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringside::bench {

class ResponseParser {
 public:
  enum class Status : uint8_t {
    kNeedMore,  // every byte given was consumed; the response is not finished
    kComplete,  // a response ended after *consumed bytes (the rest belongs to the next)
    kError,     // malformed: see error(); the connection must be closed
  };

  // Prepares for the next response. A response to HEAD has no body whatever it says.
  void reset(bool head_request = false);

  // Parses bytes that follow what was fed before.
  Status feed(const char* data, size_t len, size_t* consumed);
  Status feed(std::string_view data, size_t* consumed) {
    return feed(data.data(), data.size(), consumed);
  }
  // The peer closed the connection: completes a response delimited by the close, and is
  // an error for any other unfinished response. kNeedMore if nothing had been received.
  Status finish_at_eof();

  // True once any byte of the current response has been seen.
  bool started() const { return state_ != State::kHead || !head_.empty(); }
  int status_code() const { return status_code_; }
  // False for "Connection: close", HTTP/1.0 without keep-alive, or a close-delimited body.
  bool keep_alive() const { return keep_alive_; }
  // Bytes of the response head (status line and headers, with the blank line).
  uint64_t head_bytes() const { return head_bytes_; }
  // Body bytes (chunk payloads for chunked encoding, excluding the framing).
  uint64_t body_bytes() const { return body_bytes_; }
  const char* error() const { return error_; }

  static constexpr size_t kMaxHeadBytes = 64 * 1024;

 private:
  enum class State : uint8_t {
    kHead,
    kBodyLength,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kUntilClose,
    kDone,
  };

  enum class HeadScan : uint8_t { kComplete, kIncomplete, kError };
  // Parses the head at the start of data if all of it is there; on kComplete sets
  // head_length_ and the state for the body.
  HeadScan scan_head(const char* data, size_t len);
  Status fail(const char* why) {
    error_ = why;
    return Status::kError;
  }
  // Takes bytes of a CRLF-terminated line into line_. Returns true when the line is
  // complete (without the CRLF in line_).
  bool take_line(const char* data, size_t len, size_t* used);

  State state_ = State::kHead;
  bool head_request_ = false;
  bool keep_alive_ = true;
  int status_code_ = 0;
  uint64_t remaining_ = 0;
  size_t head_length_ = 0;
  uint64_t head_bytes_ = 0;
  uint64_t body_bytes_ = 0;
  std::string head_;  // a head split across reads
  std::string line_;  // a chunk-size or trailer line split across reads
  const char* error_ = "";
};

}  // namespace ringside::bench
