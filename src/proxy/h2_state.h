// The HTTP/2 state of a downstream connection (the HTTP/2 server codec of an HTTP
// listener): the nghttp2 session (ringside/http2.h) and one Exchange per open stream. The
// exchange layer (http.cc) drives each stream's exchange exactly as it drives an
// HTTP/1.1 connection's; the worker's h2_* calls (h2.cc) are the codec between the two.
// docs/architecture.md ("HTTP/2 server codec") has the life cycle.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/http_state.h"
#include "ringside/http2.h"
#include "ringside/stats.h"

namespace ringside::proxy {

class Worker;

// Adds to counter what a session counter gained since `before`, and remembers it: the
// listener stats follow each session's plain counters without touching them per event.
inline void add_delta(Counter& counter, uint64_t now, uint64_t& before) {
  if (now != before) counter.add(now - before);
  before = now;
}

// One stream's exchange and what the codec keeps beside it.
struct H2Stream {
  Exchange ex;
  http2::OwnedFields trailers;   // request trailers, for a chunked request upstream
  size_t unconsumed = 0;         // request body bytes received and not yet drained upstream
  bool response_ended = false;   // END_STREAM (or trailers) is queued on the stream
  bool closed = false;           // the session closed the stream: gone once the exchange ended
  bool upstream_paused = false;  // the upstream's recv waits for the stream's queue to drain
  uint64_t last_ms = 0;          // request or response bytes last moved (stream idle timeout)
};

struct H2Down final : http2::Events {
  H2Down(Worker& worker, Connection* c, const http2::Settings& settings);
  ~H2Down() override;

  H2Stream* find(int32_t id);

  // http2::Events: forwarded to the worker (h2.cc).
  void on_head(int32_t stream_id, const http2::Head& head) override;
  void on_data(int32_t stream_id, std::span<const uint8_t> data) override;
  void on_trailers(int32_t stream_id, std::span<const http2::Field> fields) override;
  void on_end(int32_t stream_id) override;
  void on_reset(int32_t stream_id, uint32_t code, bool sent_by_us) override;
  void on_close(int32_t stream_id, uint32_t code) override;
  void on_goaway(int32_t last_stream_id, uint32_t code) override;
  void on_connection_error(const http2::ConnectionError& error) override;
  void on_queue_drained(int32_t stream_id) override;

  Worker& worker;
  Connection* connection;
  http2::Session session;
  // Open streams by id: few per connection (at most --h2-max-concurrent-streams), so a
  // vector scanned linearly beats a hash map in size and speed.
  std::vector<std::unique_ptr<H2Stream>> streams;
  std::vector<std::unique_ptr<H2Stream>> spare;  // ended streams' objects, for reuse
  std::string staged;        // plaintext produced for the client, encrypted at the end of the turn
  bool dirty = false;        // in the worker's list: output to produce
  bool draining = false;     // the two-step GOAWAY was started
  bool failed = false;       // a connection error: flush what the session produced, then close
  bool closing = false;      // the session finished: the last bytes are going, then close
  bool idle_goaway = false;  // GOAWAY sent for idleness: closed at the next timer if still open
  bool reap = false;         // streams to free at the end of the turn
  uint64_t idle_since_ms = 0;  // no stream open since
  std::string client_ip;  // X-Forwarded-For's form of the peer (format_peer_ip)
  http2::Counters reported;    // the session counters already added to the listener stats
};

// An upstream connection that speaks HTTP/2 (h2c to a protocol=http2|grpc app, or h2 to a
// remote sidecar that chose it with ALPN): the client-role session and the exchanges of its
// streams. Exchanges of many client connections share it; each stream is one exchange's
// try, and ends (END_STREAM, RST_STREAM, or the exchange letting go) without the others.
struct H2Up final : http2::Events {
  H2Up(Worker& worker, Connection* u, const http2::Settings& settings);
  ~H2Up() override;

  Exchange* find(int32_t id) const;
  void track(int32_t id, Exchange* ex);  // a stream opened for ex
  void forget(int32_t id);
  // Every open stream, handed over (the connection failed or goes).
  std::vector<std::pair<int32_t, Exchange*>> take_all();

  // http2::Events: forwarded to the worker (h2_up.cc).
  void on_head(int32_t stream_id, const http2::Head& head) override;
  void on_data(int32_t stream_id, std::span<const uint8_t> data) override;
  void on_trailers(int32_t stream_id, std::span<const http2::Field> fields) override;
  void on_end(int32_t stream_id) override;
  void on_reset(int32_t stream_id, uint32_t code, bool sent_by_us) override;
  void on_close(int32_t stream_id, uint32_t code) override;
  void on_goaway(int32_t last_stream_id, uint32_t code) override;
  void on_connection_error(const http2::ConnectionError& error) override;
  void on_queue_drained(int32_t stream_id) override;

  Worker& worker;
  Connection* connection;
  http2::Session session;
  std::vector<std::pair<int32_t, Exchange*>> streams;  // open streams and their exchanges
  http2::OwnedFields trailers;  // a response's trailers, until its on_end (which follows)
  int32_t trailers_stream = 0;
  bool failed = false;       // a connection error: its streams failed; close after the GOAWAY
  bool going_away = false;   // GOAWAY either way: no new streams
  uint64_t opened = 0;       // streams opened on it so far
  http2::Counters reported;  // the session counters already added to the listener stats
};

}  // namespace ringside::proxy
