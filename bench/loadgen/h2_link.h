// The HTTP/2 side of one --h2 (or --grpc) connection of the load generator: the project's
// HTTP/2 codec (ringside::http2::Session, client role) with the streams in flight and what
// became of each. It never touches a socket: the client feeds it the plaintext it read
// (receive), sends what produce() gives, and collects finished streams after each call
// (finished), so no stream outcome is handled from inside a codec callback.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "grpc.h"
#include "ringside/http2.h"

namespace ringside::bench {

// What every stream sends: the head (pseudo-header fields first) and, for gRPC, the one
// framed message of the body.
struct H2Request {
  http2::OwnedFields head;
  std::string body;   // empty: the head ends the stream
  bool grpc = false;  // read grpc-status from the trailers (or a Trailers-Only head)
};

// How one stream ended.
struct H2Outcome {
  enum class Kind : uint8_t {
    kResponse,  // the response ended: status (and grpc_slot) say how it went
    kReset,     // RST_STREAM from the server, or from the codec over a protocol error
    kClosed,    // gone without an end or a reset (e.g. above a GOAWAY's last stream)
  };
  Kind kind = Kind::kResponse;
  uint64_t origin = 0;                 // what start() was given: the latency counts from here
  int status = 0;                      // the final head's :status, 0 when none arrived
  int grpc_slot = kGrpcStatusMissing;  // gRPC: grpc_status_slot of the trailers
  uint32_t code = 0;                   // kReset: the HTTP/2 error code
};

class H2Link final : public http2::Events {
 public:
  // request must outlive the link (the worker keeps one for all its connections).
  H2Link(const H2Request& request, const http2::Settings& settings);

  // Opens a stream (and queues its request); its latency counts from origin and it is
  // cancelled by cancel_expired after deadline. False when the connection takes no new
  // stream now (the server's stream limit, GOAWAY, or a failed connection).
  bool start(uint64_t origin, uint64_t deadline);
  size_t in_flight() const { return pending_.size(); }

  // Received plaintext. False when the connection failed: error() says why; send what
  // produce() still gives (a GOAWAY), then close. A protocol error nghttp2 answers with
  // GOAWAY fails the link only when produce() emits it: check failed() after produce().
  bool receive(std::span<const uint8_t> bytes);
  // Appends what the codec has to send now.
  void produce(std::string& out) { session_.produce(out); }

  // Streams that ended since the last clear_finished(), in the order they ended.
  const std::vector<H2Outcome>& finished() const { return finished_; }
  void clear_finished() { finished_.clear(); }

  // Resets (CANCEL) every stream whose deadline is before now; returns how many. They are
  // not reported in finished(): a timeout is the caller's to count.
  size_t cancel_expired(uint64_t now);

  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }
  // The server sent GOAWAY: no new streams; reconnect once in_flight() is 0.
  bool goaway_received() const { return session_.goaway_received(); }

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
  struct Pending {
    int32_t id;
    uint64_t origin;
    uint64_t deadline;
    int status;
    int grpc_slot;
  };
  Pending* find(int32_t stream_id);
  // Moves the stream's outcome to finished_ and forgets it.
  void finish(int32_t stream_id, H2Outcome::Kind kind, uint32_t code);

  const H2Request& request_;
  http2::Session session_;
  std::vector<Pending> pending_;  // a few dozen at most (-m): a linear search beats a map
  std::vector<H2Outcome> finished_;
  std::string error_;
  bool failed_ = false;
};

}  // namespace ringside::bench
