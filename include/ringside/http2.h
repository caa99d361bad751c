// The HTTP/2 codec: one HTTP/2 connection (RFC 9113), server or client role, on nghttp2 in
// memory-buffer mode. It never touches a socket: the owner feeds it the plaintext bytes
// it received (receive) and, once per loop turn, collects what it has to send (produce).
// Stream events reach the owner through Events in the codec-neutral form of the HTTP
// layer: headers are http::Field lists with the pseudo-headers (":method", ":scheme",
// ":authority", ":path", ":status") as fields.
//
// Flow control is back-pressure: a receive window opens only when the owner says it has
// drained the data of a stream downstream (consume). Limits and abuse bounds are in
// Settings; what happened is counted in Counters. docs/http2.md has the decisions.
//
// One worker owns a Session; nothing in it is thread-safe, nothing in it is atomic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/http.h"
#include "ringside/http2_config.h"
#include "ringside/http2_fields.h"
#include "ringside/result.h"

struct nghttp2_session;

namespace ringside::http2 {

enum class Role : uint8_t { kServer, kClient };

// RFC 9113 section 7 error codes.
enum ErrorCode : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kFlowControlError = 0x3,
  kSettingsTimeout = 0x4,
  kStreamClosed = 0x5,
  kFrameSizeError = 0x6,
  kRefusedStream = 0x7,
  kCancel = 0x8,
  kCompressionError = 0x9,
  kConnectError = 0xa,
  kEnhanceYourCalm = 0xb,
  kInadequateSecurity = 0xc,
  kHttp11Required = 0xd,
};

// Counts the bytes nghttp2 allocates for the sessions of one thread (a worker). The
// allocation itself is malloc's (glibc keeps per-thread caches already); the point is to
// know what HTTP/2 costs per connection. Plain counters: one thread uses one Allocator.
class Allocator {
 public:
  size_t live_bytes() const { return live_bytes_; }  // requested bytes not yet freed
  size_t peak_bytes() const { return peak_bytes_; }
  size_t live_blocks() const { return live_blocks_; }
  uint64_t allocations() const { return allocations_; }

  // The calling thread's allocator, used when a Session is given none.
  static Allocator& for_this_thread();

  // The nghttp2 hooks (src/http2/allocator.cc); public for the C callbacks only.
  void* allocate(size_t size);
  void release(void* ptr);
  void* reallocate(void* ptr, size_t size);

 private:
  size_t live_bytes_ = 0;
  size_t peak_bytes_ = 0;
  size_t live_blocks_ = 0;
  uint64_t allocations_ = 0;
};

// What one session saw and did; the owner reads it (no atomics: one worker owns a session).
struct Counters {
  uint64_t streams_opened = 0;  // streams whose head reached the owner, or a client opened
  uint64_t streams_closed = 0;  // of those
  uint64_t resets_sent = 0;     // RST_STREAM frames sent (any code)
  uint64_t resets_received = 0;
  uint64_t goaways_sent = 0;
  uint64_t goaways_received = 0;
  uint64_t refused_streams = 0;        // RST_STREAM(REFUSED_STREAM) sent: over the limit
  uint64_t malformed_messages = 0;     // heads or trailers reset as malformed (RFC 9113 8.1.1)
  uint64_t header_list_too_large = 0;  // over max_header_list
  uint64_t too_many_headers = 0;       // over max_headers
  uint64_t invalid_frames = 0;         // frames nghttp2 found invalid
  uint64_t empty_data_frames = 0;      // DATA with no payload and no END_STREAM
  uint64_t glitches = 0;               // everything the glitch bucket counts
  uint64_t glitch_limit_hits = 0;      // GOAWAY(ENHANCE_YOUR_CALM) for glitches
  uint64_t reset_flood_hits = 0;       // the Rapid Reset limiter closed the connection
  uint64_t ack_flood_hits = 0;         // too many PING/SETTINGS acks queued
  uint64_t continuation_flood_hits = 0;
  uint64_t settings_flood_hits = 0;  // a SETTINGS frame with too many entries
  uint64_t connection_errors = 0;    // connection errors reported (at most one per session)
};

// A head as the owner sees it. fields are valid during the callback only.
struct Head {
  std::span<const Field> fields;
  bool end_stream = false;  // no body follows (on_end is still called)
  bool interim = false;     // client role: a 1xx response; another head follows
};

// A connection error: the session is done. code is what our GOAWAY said (or the peer's
// error code for a fatal input error that we answer with no GOAWAY); reason is valid
// during the callback only.
struct ConnectionError {
  uint32_t code = kNoError;
  std::string_view reason;
};

// What the owner implements. Every call happens inside receive() or produce() of the same
// session; the owner may call the session's send/submit/reset/consume methods from inside
// them, but must not destroy the session there.
//
// A server-role session reports a stream only once its request head was valid and reached
// the owner (on_head); streams the session refused, rejected with 431 or reset as
// malformed on its own are never seen. A client-role session reports every stream that
// submit_request opened.
class Events {
 public:
  virtual ~Events() = default;
  // Server: a request head. Client: a response head (interim: a 1xx, more heads follow).
  virtual void on_head(int32_t stream_id, const Head& head) = 0;
  // Body bytes, valid during the call. Call Session::consume when they have been drained.
  virtual void on_data(int32_t stream_id, std::span<const uint8_t> data) = 0;
  // The trailer section; on_end follows.
  virtual void on_trailers(int32_t stream_id, std::span<const Field> fields) = 0;
  // The peer ended its side of the stream (after the head, the last data or trailers).
  virtual void on_end(int32_t stream_id) = 0;
  // The stream was reset: by the peer (sent_by_us false), or by this session on its own
  // (a protocol error, a limit); resets the owner asked for are not echoed.
  virtual void on_reset(int32_t stream_id, uint32_t code, bool sent_by_us) = 0;
  // The stream is gone; the last event of a stream. Its id is unknown to the session after.
  virtual void on_close(int32_t stream_id, uint32_t code) = 0;
  // The peer sent GOAWAY: streams above last_stream_id were not processed (retry them).
  virtual void on_goaway(int32_t last_stream_id, uint32_t code) = 0;
  // The connection failed (at most once). Flush what produce() gives, then close.
  virtual void on_connection_error(const ConnectionError& error) = 0;
  // The outgoing queue of a stream ran empty during produce() (resume reading its source).
  virtual void on_queue_drained(int32_t stream_id) { (void)stream_id; }
};

class Session {
 public:
  // Queues our SETTINGS (and the client preface) and the connection window update.
  // allocator: null means Allocator::for_this_thread(). Throws std::bad_alloc only if
  // nghttp2 cannot allocate the session (at connection set-up, not on the data path).
  Session(Role role, Events& events, const Settings& settings = {}, Allocator* allocator = nullptr);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Role role() const { return role_; }
  const Settings& settings() const { return settings_; }
  const Counters& counters() const { return counters_; }

  // Feeds received plaintext. Returns the bytes consumed (all of them), or the connection
  // error (kind kProtocol, or kResource for a flood): then on_connection_error was called,
  // and the owner flushes produce() and closes. A protocol error nghttp2 answers with
  // GOAWAY is reported by on_connection_error when produce() emits that GOAWAY.
  Result<size_t> receive(std::span<const uint8_t> bytes);
  // Appends every byte the session wants to send now (frames, data from the queues).
  void produce(std::string& out);
  bool wants_output() const;
  // Nothing more to read or write: close the connection (after sending produce()'s bytes).
  bool finished() const;

  // Whether a head's names are known to be lower case (to_http2_response's are): kLower
  // skips the check for upper-case letters (debug builds still assert it).
  enum class NameCase : uint8_t { kAny, kLower };

  // Server role. The response head (":status" first; names are lower-cased, connection-
  // specific fields are the caller's to drop: see to_http2_fields). Without end_stream,
  // the body follows through send_data / send_trailers.
  Result<void> submit_response(int32_t stream_id, std::span<const Field> fields, bool end_stream,
                               NameCase names = NameCase::kAny);
  // Server role: a 1xx head (e.g. 100 Continue) before the final one.
  Result<void> submit_interim(int32_t stream_id, std::span<const Field> fields,
                              NameCase names = NameCase::kAny);

  // Client role: opens a stream. Errors: kind kResource "no stream capacity" when the
  // peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached (use another connection); kind
  // kRefused when the peer sent GOAWAY (no new streams on this connection).
  Result<int32_t> submit_request(std::span<const Field> fields, bool end_stream);
  // Client role: streams submit_request may still open (peer limit minus open streams);
  // 0 once GOAWAY was received.
  size_t available_streams() const;
  bool goaway_received() const { return goaway_received_; }

  // Both roles: appends body bytes to the stream's outgoing queue (after its head).
  // end_stream: the body ends when the queue is sent.
  Result<void> send_data(int32_t stream_id, std::span<const uint8_t> bytes, bool end_stream);
  // Both roles: ends the stream with a trailer section after the queued data.
  Result<void> send_trailers(int32_t stream_id, std::span<const Field> fields);
  // Bytes in the stream's outgoing queue (0 for an unknown stream): stop reading the
  // source of a stream whose queue is long; on_queue_drained says when to resume.
  size_t queued(int32_t stream_id) const;
  // Resets a stream (RST_STREAM with code). Unknown or closed streams are ignored.
  void reset(int32_t stream_id, uint32_t code);
  // The owner drained n bytes of the stream's data downstream: open the windows by n.
  // Bytes a stream still holds unconsumed when it closes are given back automatically.
  void consume(int32_t stream_id, size_t n);

  // Graceful drain, RFC 9113 section 6.8. Server: GOAWAY with 2^31-1 and a PING now; when
  // the PING is acknowledged, the final GOAWAY(NO_ERROR) with the last stream processed.
  // Client: the final GOAWAY at once. In-flight streams finish; then finished() is true.
  void start_drain();
  // The final GOAWAY now, with code (e.g. after the drain timeout, or kNoError at idle).
  void goaway(uint32_t code);

  // Streams the session holds state for (both directions; a server's streams whose head is
  // still arriving included).
  size_t open_streams() const { return stream_count_; }

  struct Stream;  // per-stream state (src/http2/session.cc)

 private:
  friend struct Callbacks;

  uint64_t now_ms() const;
  Side side() const;
  void glitch();
  void report_connection_error(uint32_t code, std::string_view reason);
  Result<void> submit_head(int32_t stream_id, std::span<const Field> fields, bool end_stream,
                           bool interim, NameCase names);
  // fields, or a lower-cased copy of them in scratch_ when a name has an upper-case letter.
  std::span<const Field> lowercased(std::span<const Field> fields);
  Stream* find(int32_t stream_id) const;
  void link(Stream* stream);
  void close_stream(Stream* stream, uint32_t code);
  void on_headers_frame(int32_t stream_id, bool request, bool end_stream);
  void reject_with_431(Stream* stream, bool request_ended);

  Role role_;
  Events& events_;
  Settings settings_;
  Allocator* allocator_;
  nghttp2_session* session_ = nullptr;
  Counters counters_;

  OwnedFields incoming_;  // the head or trailer section being received (one at a time)
  OwnedFields scratch_;   // fields being submitted, lower-cased (lowercased())
  uint32_t incoming_bytes_ = 0;
  bool incoming_over_ = false;  // the section being received is over a limit
  Stream* streams_ = nullptr;   // every Stream, in a list (freed with the session)
  size_t stream_count_ = 0;
  size_t client_streams_ = 0;     // client role: streams submit_request opened, still open
  std::vector<int32_t> drained_;  // streams whose queue ran empty in produce()

  double glitch_tokens_ = 0;
  uint64_t glitch_refill_ms_ = 0;
  bool goaway_received_ = false;
  bool error_reported_ = false;
  bool failed_ = false;  // a connection error of ours: GOAWAY queued, input refused
  bool dead_ = false;    // a fatal error: nghttp2 must not be fed or asked anything more
  bool draining_ = false;
  bool owner_goaway_ = false;  // the owner asked for the GOAWAYs being sent
  Error fatal_{};
};

}  // namespace ringside::http2
