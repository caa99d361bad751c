// The HTTP/2 side of one connection of `ringside-bench serve --grpc`: the project's HTTP/2
// codec (ringside::http2::Session, server role) answering unary gRPC calls by echoing them.
// Like H2Link it never touches a socket: the server feeds it the bytes it read (receive)
// and writes what produce() appends.
//
// Every POST whose content-type is application/grpc (or application/grpc+...) is
// answered, on any path, once its request has ended: HEADERS `:status 200` and
// `content-type: application/grpc`, one DATA frame holding the request body as it came
// (the length-prefixed message; an empty message when the body was empty), and trailers
// `grpc-status: 0`. A body over kMaxEchoBody gets a Trailers-Only RESOURCE_EXHAUSTED.
// Any other request gets a 404 with no body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringside/http2.h"

namespace ringside::bench {

// The largest request body echoed: one message of the largest --message-size and its
// 5-byte prefix.
inline constexpr size_t kMaxEchoBody = (16u << 20) + 5;

class GrpcEcho final : public http2::Events {
 public:
  explicit GrpcEcho(const http2::Settings& settings = {});

  // Received plaintext. False when the connection failed: write what produce() still
  // gives (a GOAWAY), then close.
  bool receive(std::span<const uint8_t> bytes);
  // Appends what the codec has to send now.
  void produce(std::string& out) { session_.produce(out); }
  // The connection is done (a connection error, or a GOAWAY exchange with no stream left):
  // close it once produce()'s bytes are written.
  bool finished() const { return failed_ || session_.finished(); }

  // Calls answered with grpc-status 0 over this connection's life.
  uint64_t calls() const { return calls_; }
  size_t open_streams() const { return streams_.size(); }

  // http2::Events.
  void on_head(int32_t stream_id, const http2::Head& head) override;
  void on_data(int32_t stream_id, std::span<const uint8_t> data) override;
  void on_trailers(int32_t stream_id, std::span<const http2::Field> fields) override;
  void on_end(int32_t stream_id) override;
  void on_reset(int32_t stream_id, uint32_t code, bool sent_by_us) override;
  void on_close(int32_t stream_id, uint32_t code) override;
  void on_goaway(int32_t last_stream_id, uint32_t code) override;
  void on_connection_error(const http2::ConnectionError& error) override;

 private:
  // A gRPC call whose request is still arriving. Bodies are kept in spare_ for reuse.
  struct Call {
    int32_t id;
    bool too_large;
    std::string body;
  };
  Call* find(int32_t stream_id);
  void forget(int32_t stream_id);

  http2::Session session_;
  // Open calls, searched linearly: with 160 open on one connection a call still costs the
  // app about 2.2 us of CPU, all included.
  std::vector<Call> streams_;
  std::vector<std::string> spare_;  // bodies of ended calls, capacity kept
  uint64_t calls_ = 0;
  bool failed_ = false;
};

}  // namespace ringside::bench
