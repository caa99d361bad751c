// Test helpers for the HTTP/2 codec: an event recorder, a server/client pair that passes
// bytes between two sessions, and hand-made frames (a tiny frame writer and reader, HPACK
// through nghttp2's own deflater) for input a well-behaved client never sends.
#pragma once

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringside/http2.h"

namespace ringside::http2::test {

using FieldList = std::vector<std::pair<std::string, std::string>>;

inline FieldList copy(std::span<const Field> fields) {
  FieldList out;
  for (const Field& f : fields) out.emplace_back(f.name, f.value);
  return out;
}

inline std::vector<Field> views(const FieldList& list) {
  std::vector<Field> out;
  for (const auto& [n, v] : list) out.push_back(Field{n, v});
  return out;
}

inline std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Records every event; per stream, the heads, body and trailers received.
class Recorder : public Events {
 public:
  struct StreamLog {
    std::vector<FieldList> heads;  // interim heads, then the final one
    std::vector<bool> head_end_stream;
    std::string body;
    FieldList trailers;
    bool ended = false;
    bool reset = false;
    uint32_t reset_code = 0;
    bool reset_by_us = false;
    bool closed = false;
    uint32_t close_code = 0;
  };

  void on_head(int32_t id, const Head& head) override {
    log.push_back("head " + std::to_string(id));
    streams[id].heads.push_back(copy(head.fields));
    streams[id].head_end_stream.push_back(head.end_stream);
    if (head.interim) ++interim_heads;
    if (on_head_hook) on_head_hook(id, head);
  }
  void on_data(int32_t id, std::span<const uint8_t> data) override {
    streams[id].body.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (auto_consume && session != nullptr) session->consume(id, data.size());
  }
  void on_trailers(int32_t id, std::span<const Field> fields) override {
    log.push_back("trailers " + std::to_string(id));
    streams[id].trailers = copy(fields);
  }
  void on_end(int32_t id) override {
    log.push_back("end " + std::to_string(id));
    EXPECT_FALSE(streams[id].ended) << "on_end twice for stream " << id;
    streams[id].ended = true;
    if (on_end_hook) on_end_hook(id);
  }
  void on_reset(int32_t id, uint32_t code, bool by_us) override {
    log.push_back("reset " + std::to_string(id));
    streams[id].reset = true;
    streams[id].reset_code = code;
    streams[id].reset_by_us = by_us;
  }
  void on_close(int32_t id, uint32_t code) override {
    log.push_back("close " + std::to_string(id));
    EXPECT_FALSE(streams[id].closed) << "on_close twice for stream " << id;
    streams[id].closed = true;
    streams[id].close_code = code;
  }
  void on_goaway(int32_t last_stream_id, uint32_t code) override {
    goaways.emplace_back(last_stream_id, code);
  }
  void on_connection_error(const ConnectionError& error) override {
    ++connection_errors;
    error_code = error.code;
    error_reason = std::string(error.reason);
  }
  void on_queue_drained(int32_t id) override { drained.push_back(id); }

  Session* session = nullptr;  // for auto_consume
  bool auto_consume = true;
  std::function<void(int32_t, const Head&)> on_head_hook;
  std::function<void(int32_t)> on_end_hook;
  std::vector<std::string> log;
  std::map<int32_t, StreamLog> streams;
  std::vector<std::pair<int32_t, uint32_t>> goaways;
  std::vector<int32_t> drained;
  int interim_heads = 0;
  int connection_errors = 0;
  uint32_t error_code = 0;
  std::string error_reason;
};

// A server session and a client session connected in memory.
struct Pair {
  explicit Pair(const Settings& server_settings = {}, const Settings& client_settings = {})
      : server(Role::kServer, server_events, server_settings),
        client(Role::kClient, client_events, client_settings) {
    server_events.session = &server;
    client_events.session = &client;
  }

  // Moves bytes both ways until neither side has anything to send. Returns the turns taken.
  int pump(int max_turns = 1000) {
    for (int turn = 0; turn < max_turns; ++turn) {
      std::string to_server, to_client;
      client.produce(to_server);
      if (!to_server.empty()) {
        EXPECT_TRUE(server.receive(bytes(to_server)).ok());
      }
      server.produce(to_client);
      if (!to_client.empty()) {
        EXPECT_TRUE(client.receive(bytes(to_client)).ok());
      }
      if (to_server.empty() && to_client.empty()) return turn;
    }
    ADD_FAILURE() << "the sessions never went quiet";
    return max_turns;
  }

  Recorder server_events;
  Recorder client_events;
  Session server;
  Session client;
};

inline FieldList get_request(std::string path = "/") {
  return {{":method", "GET"},
          {":scheme", "https"},
          {":authority", "example.com"},
          {":path", std::move(path)}};
}

// --- hand-made frames ---------------------------------------------------------------

enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
enum FrameFlag : uint8_t { kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4 };

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string frame(uint8_t type, uint8_t flags, int32_t stream_id,
                         std::string_view payload = {}) {
  std::string out;
  const auto len = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>(len >> 16));
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  out += be32(static_cast<uint32_t>(stream_id) & 0x7fffffffu);
  out.append(payload);
  return out;
}

inline std::string settings_frame(const std::vector<std::pair<uint16_t, uint32_t>>& entries) {
  std::string payload;
  for (const auto& [id, value] : entries) {
    payload.push_back(static_cast<char>(id >> 8));
    payload.push_back(static_cast<char>(id));
    payload += be32(value);
  }
  return frame(kSettings, 0, 0, payload);
}

// The client connection preface and an empty SETTINGS frame.
inline std::string client_preface() {
  return std::string(NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN) + settings_frame({});
}

inline std::string rst_stream(int32_t id, uint32_t code) {
  return frame(kRstStream, 0, id, be32(code));
}

// HPACK through nghttp2's deflater: it encodes names and values as given (upper case,
// connection-specific fields, bad values included), which is what malformed heads need.
class Hpack {
 public:
  Hpack() { nghttp2_hd_deflate_new(&deflater_, 4096); }
  ~Hpack() { nghttp2_hd_deflate_del(deflater_); }
  Hpack(const Hpack&) = delete;
  Hpack& operator=(const Hpack&) = delete;

  std::string encode(const FieldList& fields) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : fields) {
      nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                              reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(),
                              v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(deflater_, nv.data(), nv.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<uint8_t*>(out.data()),
                                            out.size(), nv.data(), nv.size());
    EXPECT_GE(n, 0);
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }

 private:
  nghttp2_hd_deflater* deflater_ = nullptr;
};

inline std::string headers_frame(Hpack& hpack, int32_t id, const FieldList& fields,
                                 bool end_stream) {
  return frame(kHeaders, static_cast<uint8_t>(kEndHeaders | (end_stream ? kEndStream : 0)), id,
               hpack.encode(fields));
}

// One frame of a session's output.
struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  int32_t stream_id = 0;
  std::string payload;

  uint32_t u32(size_t at) const {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(payload[at + i]);
    return v;
  }
  uint32_t rst_code() const { return u32(0); }
  int32_t goaway_last() const { return static_cast<int32_t>(u32(0) & 0x7fffffffu); }
  uint32_t goaway_code() const { return u32(4); }
};

inline std::vector<Frame> parse_frames(std::string_view out) {
  std::vector<Frame> frames;
  while (out.size() >= 9) {
    const size_t len = (static_cast<size_t>(static_cast<uint8_t>(out[0])) << 16) |
                       (static_cast<size_t>(static_cast<uint8_t>(out[1])) << 8) |
                       static_cast<uint8_t>(out[2]);
    if (out.size() < 9 + len) break;
    Frame f;
    f.type = static_cast<uint8_t>(out[3]);
    f.flags = static_cast<uint8_t>(out[4]);
    f.stream_id =
        static_cast<int32_t>(((static_cast<uint32_t>(static_cast<uint8_t>(out[5])) << 24) |
                              (static_cast<uint32_t>(static_cast<uint8_t>(out[6])) << 16) |
                              (static_cast<uint32_t>(static_cast<uint8_t>(out[7])) << 8) |
                              static_cast<uint8_t>(out[8])) &
                             0x7fffffffu);
    f.payload = std::string(out.substr(9, len));
    frames.push_back(std::move(f));
    out.remove_prefix(9 + len);
  }
  return frames;
}

// A server session fed by hand-made frames.
struct RawServer {
  explicit RawServer(const Settings& settings = {}) : session(Role::kServer, events, settings) {
    events.session = &session;
  }

  // Feeds bytes; returns whether receive() succeeded. The session's answer is appended to
  // output (and parsed into frames).
  bool feed(std::string_view in) {
    const bool ok = session.receive(bytes(in)).ok();
    drain();
    return ok;
  }
  void drain() {
    std::string out;
    session.produce(out);
    for (Frame& f : parse_frames(out)) frames.push_back(std::move(f));
  }
  // The RST_STREAM code sent for a stream, or -1.
  int64_t rst_code(int32_t id) const {
    for (const Frame& f : frames) {
      if (f.type == kRstStream && f.stream_id == id) return f.rst_code();
    }
    return -1;
  }
  const Frame* last_goaway() const {
    const Frame* found = nullptr;
    for (const Frame& f : frames) {
      if (f.type == kGoaway) found = &f;
    }
    return found;
  }
  int count(uint8_t type) const {
    int n = 0;
    for (const Frame& f : frames) n += f.type == type ? 1 : 0;
    return n;
  }

  Recorder events;
  Session session;
  std::vector<Frame> frames;
};

}  // namespace ringside::http2::test
