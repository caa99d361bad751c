// The HTTP/2 codec on nghttp2 in memory-buffer mode (include/ringside/http2.h).
// nghttp2 does the framing, HPACK, stream states, flow-control accounting and most of RFC
// 9113 section 8; this file turns its callbacks into the owner's Events, keeps the
// outgoing queues, enforces the header limits, adds the request checks nghttp2 leaves out
// and counts glitches. docs/http2.md has the decisions.
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <cstring>
#include <new>
#include <vector>

#include "ringside/http2.h"

namespace ringside::http2 {

struct Session::Stream {
  int32_t id = 0;
  Stream* prev = nullptr;
  Stream* next = nullptr;
  bool known = false;         // the owner knows the stream (head delivered, or client-opened)
  bool final_head = false;    // client: the final (non-1xx) response head arrived
  bool reject_431 = false;    // server: the request head is over a limit, answered 431
  bool owner_reset = false;   // reset() was called (or a reset the owner need not hear of)
  bool has_provider = false;  // our head went out with a data provider
  bool end_queued = false;    // our side ends once the queue (and trailers) are sent
  bool deferred = false;      // the data provider returned NGHTTP2_ERR_DEFERRED
  bool has_trailers = false;
  bool glitch_counted = false;  // the session's own error on this stream is counted
  size_t unconsumed = 0;        // bytes given to on_data and not yet consume()d
  std::string queue;            // outgoing body bytes; queue_at bytes of it are sent
  size_t queue_at = 0;
  OwnedFields trailers;
};

namespace {

constexpr std::array<uint8_t, 8> kDrainPing = {'r', 'i', 'n', 'g', 'd', 'r', 'a', 'i'};
// An idle connection keeps at most this much of the header buffers' capacity.
constexpr size_t kKeepHeaderBytes = 4096;

uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void* mem_malloc(size_t size, void* user) { return static_cast<Allocator*>(user)->allocate(size); }
void mem_free(void* ptr, void* user) { static_cast<Allocator*>(user)->release(ptr); }
void* mem_calloc(size_t count, size_t size, void* user) {
  if (size != 0 && count > SIZE_MAX / size) return nullptr;
  void* p = static_cast<Allocator*>(user)->allocate(count * size);
  if (p != nullptr) std::memset(p, 0, count * size);
  return p;
}
void* mem_realloc(void* ptr, size_t size, void* user) {
  return static_cast<Allocator*>(user)->reallocate(ptr, size);
}

// nghttp2 keeps views of name and value only while the submit call runs (it copies them).
void to_nv(std::span<const Field> fields, std::vector<nghttp2_nv>& nv) {
  nv.clear();
  for (const Field& f : fields) {
    nv.push_back(nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(f.name.data())),
                            const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(f.value.data())),
                            f.name.size(), f.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
}

std::vector<nghttp2_nv>& nv_scratch() {
  thread_local std::vector<nghttp2_nv> nv;
  return nv;
}

std::string_view field_value(std::span<const Field> fields, std::string_view name) {
  for (const Field& f : fields) {
    if (f.name == name) return f.value;
  }
  return {};
}

bool has_field(std::span<const Field> fields, std::string_view name) {
  return std::any_of(fields.begin(), fields.end(), [&](const Field& f) { return f.name == name; });
}

// What nghttp2 1.52 leaves unchecked in a request head (docs/http2.md lists what it does
// check). Returns a reason, or an empty view when the head is fine.
std::string_view request_problem(std::span<const Field> fields) {
  const std::string_view method = field_value(fields, ":method");
  if (method != "CONNECT") {
    // nghttp2 checks the form of :path only for the http and https schemes.
    const std::string_view path = field_value(fields, ":path");
    const bool asterisk = path == "*" && method == "OPTIONS";
    if (!asterisk && (path.empty() || path.front() != '/')) return "bad :path";
  }
  // RFC 9113 8.3.1: a Host that names another entity than :authority.
  if (has_field(fields, ":authority")) {
    for (const Field& f : fields) {
      if (f.name == "host" && !http::iequals(f.value, field_value(fields, ":authority"))) {
        return "host differs from :authority";
      }
    }
  }
  return {};
}

int status_of(std::span<const Field> fields) {
  const std::string_view s = field_value(fields, ":status");
  if (s.size() != 3) return 0;
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

// The nghttp2 callbacks; user_data is the Session.
struct Callbacks {
  static Session& self(void* user) { return *static_cast<Session*>(user); }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    Session& s = self(user);
    s.incoming_.clear();
    s.incoming_bytes_ = 0;
    s.incoming_over_ = false;
    if (frame->hd.type != NGHTTP2_HEADERS || s.role_ != Role::kServer ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    auto* st = new (std::nothrow) Session::Stream;
    if (st == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->id = frame->hd.stream_id;
    s.link(st);
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    Session& s = self(user);
    Session::Stream* st = s.find(frame->hd.stream_id);
    if (st == nullptr || s.incoming_over_ || s.failed_) return 0;
    const size_t field_bytes = namelen + valuelen + 32;
    const bool too_many = s.incoming_.size() + 1 > s.settings_.max_headers;
    const bool too_big = s.incoming_bytes_ + field_bytes > s.settings_.max_header_list;
    if (too_many || too_big) {
      ++(too_many ? s.counters_.too_many_headers : s.counters_.header_list_too_large);
      if (s.role_ == Role::kServer && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        // Decoding goes on (HPACK state must follow the peer's), nothing more is kept.
        st->reject_431 = true;
        s.incoming_over_ = true;
        s.incoming_.clear();
        return 0;
      }
      // A response or trailers over our limits: RST_STREAM(INTERNAL_ERROR); the owner
      // hears of it through on_reset.
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s.incoming_bytes_ += static_cast<uint32_t>(field_bytes);
    s.incoming_.add(std::string_view(reinterpret_cast<const char*>(name), namelen),
                    std::string_view(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }

  // nghttp2 ignores a regular field with an invalid name or value unless told otherwise:
  // RFC 9113 8.2.1 makes the message malformed, so the stream is reset (PROTOCOL_ERROR).
  static int on_invalid_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                               const uint8_t*, size_t, uint8_t, void*) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Session& s = self(user);
    // After our own connection error (the glitch limit), nghttp2 still parses the rest of
    // the input it was given; none of it counts or reaches the owner.
    if (s.failed_) return 0;
    const int32_t id = frame->hd.stream_id;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        s.on_headers_frame(id, frame->headers.cat == NGHTTP2_HCAT_REQUEST, end);
        break;
      case NGHTTP2_DATA: {
        if (frame->hd.length <= frame->data.padlen && !end) {
          ++s.counters_.empty_data_frames;
          s.glitch();
        }
        Session::Stream* st = s.find(id);
        if (end && st != nullptr && st->known && !st->owner_reset) s.events_.on_end(id);
        break;
      }
      case NGHTTP2_RST_STREAM: {
        ++s.counters_.resets_received;
        Session::Stream* st = s.find(id);
        if (st != nullptr && st->known) {
          s.events_.on_reset(id, frame->rst_stream.error_code, false);
        }
        break;
      }
      case NGHTTP2_GOAWAY:
        ++s.counters_.goaways_received;
        s.goaway_received_ = true;
        s.events_.on_goaway(frame->goaway.last_stream_id, frame->goaway.error_code);
        break;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0 && s.draining_ &&
            std::memcmp(frame->ping.opaque_data, kDrainPing.data(), kDrainPing.size()) == 0) {
          s.draining_ = false;
          s.goaway(kNoError);
        }
        break;
      default:
        break;
    }
    return 0;
  }

  static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                                   void* user) {
    Session& s = self(user);
    if (s.failed_) return 0;
    if (Session::Stream* st = s.find(frame->hd.stream_id)) st->glitch_counted = true;
    if (lib_error == NGHTTP2_ERR_HTTP_HEADER || lib_error == NGHTTP2_ERR_HTTP_MESSAGING) {
      ++s.counters_.malformed_messages;
    } else if (lib_error == NGHTTP2_ERR_REFUSED_STREAM) {
      ++s.counters_.refused_streams;
    } else {
      ++s.counters_.invalid_frames;
    }
    s.glitch();
    return 0;
  }

  static int on_data_chunk_recv(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                                size_t len, void* user) {
    Session& s = self(user);
    Session::Stream* st = s.find(id);
    if (st == nullptr || !st->known || st->owner_reset || s.failed_) {
      // Nobody will drain it: give the window back at once.
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    st->unconsumed += len;
    s.events_.on_data(id, std::span<const uint8_t>(data, len));
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Session& s = self(user);
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      ++s.counters_.resets_sent;
      Session::Stream* st = s.find(frame->hd.stream_id);
      if (st != nullptr && !st->owner_reset && !st->glitch_counted) {
        // A reset nghttp2 sent with no callback before: DATA that disagrees with
        // content-length (PROTOCOL_ERROR), or a head over our limits (INTERNAL_ERROR).
        st->glitch_counted = true;
        if (frame->rst_stream.error_code == NGHTTP2_PROTOCOL_ERROR)
          ++s.counters_.malformed_messages;
        s.glitch();
      }
      if (st != nullptr && st->known && !st->owner_reset) {
        st->owner_reset = true;  // reported once; nothing more of it reaches the owner
        s.events_.on_reset(frame->hd.stream_id, frame->rst_stream.error_code, true);
      }
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
      ++s.counters_.goaways_sent;
      const uint32_t code = frame->goaway.error_code;
      if (code != kNoError && !s.owner_goaway_) {
        const std::string_view reason(reinterpret_cast<const char*>(frame->goaway.opaque_data),
                                      frame->goaway.opaque_data_len);
        if (code == kInternalError && reason.empty() && s.role_ == Role::kServer) {
          // The only GOAWAY nghttp2 sends without a reason: the Rapid Reset limiter.
          ++s.counters_.reset_flood_hits;
          s.report_connection_error(code, "too many RST_STREAM frames (rapid reset)");
        } else {
          if (reason.starts_with("SETTINGS: too many")) ++s.counters_.settings_flood_hits;
          s.report_connection_error(code, reason.empty() ? "protocol error" : reason);
        }
      }
    }
    return 0;
  }

  static int on_frame_not_send(nghttp2_session* session, const nghttp2_frame* frame, int,
                               void* user) {
    Session& s = self(user);
    // A request that never left (GOAWAY came first, or the session is closing). nghttp2
    // may or may not hold a stream for it: when it does (a session closing after its own
    // GOAWAY, nghttp2 1.52), on_stream_close follows and must not find the Stream freed
    // here through the stream's user data.
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST ||
        s.role_ != Role::kClient) {
      return 0;
    }
    Session::Stream* st = s.find(frame->hd.stream_id);
    if (st == nullptr) return 0;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, nullptr);
    s.close_stream(st, kRefusedStream);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* user) {
    Session& s = self(user);
    Session::Stream* st = s.find(id);
    if (st != nullptr) s.close_stream(st, code);
    return 0;
  }

  static ssize_t read_data(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void* user) {
    Session& s = self(user);
    auto* st = static_cast<Session::Stream*>(source->ptr);
    const size_t n = std::min(length, st->queue.size() - st->queue_at);
    std::memcpy(buf, st->queue.data() + st->queue_at, n);
    st->queue_at += n;
    if (st->queue_at == st->queue.size()) {
      st->queue.clear();
      st->queue_at = 0;
      if (n > 0 && !st->end_queued) s.drained_.push_back(id);
    } else if (st->queue_at >= 64 * 1024 && st->queue_at * 2 >= st->queue.size()) {
      st->queue.erase(0, st->queue_at);
      st->queue_at = 0;
    }
    if (st->queue.empty() && st->end_queued) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (st->has_trailers) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv>& nv = nv_scratch();
        to_nv(st->trailers.fields(), nv);
        if (nghttp2_submit_trailer(session, id, nv.data(), nv.size()) != 0) {
          return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      st->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }
};

Session::Session(Role role, Events& events, const Settings& settings, Allocator* allocator)
    : role_(role),
      events_(events),
      settings_(settings),
      allocator_(allocator != nullptr ? allocator : &Allocator::for_this_thread()) {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_invalid_header_callback(cb, Callbacks::on_invalid_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb,
                                                               Callbacks::on_invalid_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Callbacks::on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, Callbacks::on_frame_not_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Callbacks::on_stream_close);

  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    throw std::bad_alloc();
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_no_closed_streams(opt, 1);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, settings_.hpack_table_size);
  nghttp2_option_set_stream_reset_rate_limit(opt, settings_.reset_burst, settings_.reset_rate);
  nghttp2_option_set_max_continuations(opt, settings_.max_continuations);
  nghttp2_option_set_max_outbound_ack(opt, settings_.max_outbound_ack);
  nghttp2_option_set_max_settings(opt, settings_.max_settings_entries);

  nghttp2_mem mem{allocator_, mem_malloc, mem_free, mem_calloc, mem_realloc};
  const int rv = role_ == Role::kServer
                     ? nghttp2_session_server_new3(&session_, cb, this, opt, &mem)
                     : nghttp2_session_client_new3(&session_, cb, this, opt, &mem);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) throw std::bad_alloc();

  std::vector<nghttp2_settings_entry> iv = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings_.max_header_list},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings_.hpack_table_size},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (role_ == Role::kServer) {
    iv.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams});
  } else {
    iv.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  }
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size()) != 0 ||
      nghttp2_session_set_local_window_size(
          session_, NGHTTP2_FLAG_NONE, 0,
          static_cast<int32_t>(std::min<uint32_t>(settings_.initial_connection_window,
                                                  NGHTTP2_MAX_WINDOW_SIZE))) != 0) {
    nghttp2_session_del(session_);
    throw std::bad_alloc();
  }
  glitch_tokens_ = static_cast<double>(settings_.glitch_burst);
  glitch_refill_ms_ = now_ms();
}

Session::~Session() {
  nghttp2_session_del(session_);
  while (streams_ != nullptr) {
    Stream* st = streams_;
    streams_ = st->next;
    delete st;
  }
}

uint64_t Session::now_ms() const {
  return settings_.now_ms != nullptr ? settings_.now_ms() : steady_ms();
}

Side Session::side() const { return role_ == Role::kServer ? Side::kDownstream : Side::kUpstream; }

void Session::link(Stream* st) {
  st->next = streams_;
  if (streams_ != nullptr) streams_->prev = st;
  streams_ = st;
  ++stream_count_;
}

Session::Stream* Session::find(int32_t stream_id) const {
  if (dead_ || stream_id <= 0) return nullptr;
  if (auto* st = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session_, stream_id))) {
    return st;
  }
  // A client stream is known to nghttp2 only once its HEADERS are being sent.
  for (Stream* st = streams_; st != nullptr; st = st->next) {
    if (st->id == stream_id) return st;
  }
  return nullptr;
}

void Session::close_stream(Stream* st, uint32_t code) {
  if (st->unconsumed > 0) nghttp2_session_consume_connection(session_, st->unconsumed);
  if (st->known) {
    ++counters_.streams_closed;
    if (role_ == Role::kClient) --client_streams_;
    events_.on_close(st->id, code);
  }
  if (st->prev != nullptr) st->prev->next = st->next;
  if (st->next != nullptr) st->next->prev = st->prev;
  if (streams_ == st) streams_ = st->next;
  --stream_count_;
  delete st;
  if (stream_count_ == 0) incoming_.clear_and_trim(kKeepHeaderBytes);
}

void Session::on_headers_frame(int32_t id, bool request, bool end) {
  Stream* st = find(id);
  if (st == nullptr) return;
  const std::span<const Field> fields = incoming_.fields();
  if (role_ == Role::kServer && request) {
    if (st->reject_431) {
      reject_with_431(st, end);
      return;
    }
    if (!request_problem(fields).empty()) {
      ++counters_.malformed_messages;
      st->glitch_counted = true;
      glitch();
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    st->known = true;
    ++counters_.streams_opened;
    events_.on_head(id, Head{fields, end, false});
  } else if (role_ == Role::kClient && !st->final_head) {
    const bool interim = status_of(fields) < 200;
    st->final_head = !interim;
    events_.on_head(id, Head{fields, end, interim});
  } else {
    events_.on_trailers(id, fields);
  }
  if (end && !st->owner_reset) events_.on_end(id);
}

void Session::reject_with_431(Stream* st, bool request_ended) {
  static constexpr Field k431[] = {{":status", "431"}, {"content-length", "0"}};
  std::vector<nghttp2_nv>& nv = nv_scratch();
  to_nv(k431, nv);
  nghttp2_submit_response(session_, st->id, nv.data(), nv.size(), nullptr);
  if (!request_ended) {
    // RFC 9113 8.1: a complete response, then RST_STREAM(NO_ERROR) for the rest of the body.
    st->owner_reset = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
  }
}

void Session::glitch() {
  ++counters_.glitches;
  const uint64_t now = now_ms();
  const double refill = static_cast<double>(now - glitch_refill_ms_) *
                        static_cast<double>(settings_.glitch_rate) / 1000.0;
  glitch_tokens_ = std::min(static_cast<double>(settings_.glitch_burst), glitch_tokens_ + refill);
  glitch_refill_ms_ = now;
  if (glitch_tokens_ >= 1) {
    glitch_tokens_ -= 1;
    return;
  }
  if (failed_ || dead_) return;
  ++counters_.glitch_limit_hits;
  failed_ = true;
  fatal_ = make_error(ErrorKind::kProtocol, side(), "too many stream errors (glitches)");
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  report_connection_error(kEnhanceYourCalm, fatal_.what);
}

void Session::report_connection_error(uint32_t code, std::string_view reason) {
  if (error_reported_) return;
  error_reported_ = true;
  ++counters_.connection_errors;
  events_.on_connection_error(ConnectionError{code, reason});
}

Result<size_t> Session::receive(std::span<const uint8_t> bytes) {
  if (dead_ || failed_) return fatal_;
  const ssize_t n = nghttp2_session_mem_recv(session_, bytes.data(), bytes.size());
  if (n < 0) {
    uint32_t code = kProtocolError;
    ErrorKind kind = ErrorKind::kProtocol;
    if (n == NGHTTP2_ERR_FLOODED) {
      ++counters_.ack_flood_hits;
      code = kEnhanceYourCalm;
      kind = ErrorKind::kResource;
    } else if (n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
      ++counters_.continuation_flood_hits;
      code = kEnhanceYourCalm;
      kind = ErrorKind::kResource;
    } else if (n == NGHTTP2_ERR_NOMEM || n == NGHTTP2_ERR_CALLBACK_FAILURE) {
      code = kInternalError;
      kind = n == NGHTTP2_ERR_NOMEM ? ErrorKind::kResource : ErrorKind::kInternal;
    }
    dead_ = true;
    fatal_ = make_error(kind, side(), nghttp2_strerror(static_cast<int>(n)));
    report_connection_error(code, fatal_.what);
    return fatal_;
  }
  if (failed_) return fatal_;
  return static_cast<size_t>(n);
}

void Session::produce(std::string& out) {
  while (!dead_) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      dead_ = true;
      fatal_ = make_error(ErrorKind::kInternal, side(), nghttp2_strerror(static_cast<int>(n)));
      report_connection_error(kInternalError, fatal_.what);
      break;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (drained_.empty()) return;
  // The owner may queue more from inside the callback; that goes out at the next produce.
  std::vector<int32_t> drained;
  drained.swap(drained_);
  for (int32_t id : drained) {
    if (find(id) != nullptr) events_.on_queue_drained(id);
  }
  if (drained_.empty()) {
    drained.clear();
    drained_.swap(drained);  // keep the capacity
  }
}

bool Session::wants_output() const { return !dead_ && nghttp2_session_want_write(session_) != 0; }

bool Session::finished() const {
  return dead_ ||
         (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0);
}

std::span<const Field> Session::lowercased(std::span<const Field> fields) {
  // nghttp2 copies what is submitted; the proxy's own translations give lower-case names
  // already (to_http2_response, h2_up.cc), so only a head with an upper-case name is
  // copied to lower-case it.
  for (const Field& f : fields) {
    if (has_uppercase(f.name)) {
      scratch_.clear();
      for (const Field& g : fields) scratch_.add_lowercase(g.name, g.value);
      return scratch_.fields();
    }
  }
  return fields;
}

Result<void> Session::submit_head(int32_t stream_id, std::span<const Field> fields, bool end_stream,
                                  bool interim, NameCase names) {
  if (role_ != Role::kServer) return make_error(ErrorKind::kInternal, side(), "not a server");
  Stream* st = find(stream_id);
  if (st == nullptr || !st->known || st->owner_reset || st->has_provider || st->end_queued) {
    return make_error(ErrorKind::kInternal, side(), "no such stream awaiting a head");
  }
  std::vector<nghttp2_nv>& nv = nv_scratch();
  if (names == NameCase::kLower) {
    assert(std::none_of(fields.begin(), fields.end(),
                        [](const Field& f) { return has_uppercase(f.name); }));
    to_nv(fields, nv);
  } else {
    to_nv(lowercased(fields), nv);
  }
  int rv = 0;
  if (interim) {
    rv = nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, stream_id, nullptr, nv.data(),
                                nv.size(), nullptr);
  } else if (end_stream) {
    rv = nghttp2_submit_response(session_, stream_id, nv.data(), nv.size(), nullptr);
    st->end_queued = true;
  } else {
    nghttp2_data_provider provider{};
    provider.source.ptr = st;
    provider.read_callback = Callbacks::read_data;
    rv = nghttp2_submit_response(session_, stream_id, nv.data(), nv.size(), &provider);
    st->has_provider = true;
  }
  if (rv != 0) return make_error(ErrorKind::kInternal, side(), nghttp2_strerror(rv));
  return {};
}

Result<void> Session::submit_response(int32_t stream_id, std::span<const Field> fields,
                                      bool end_stream, NameCase names) {
  return submit_head(stream_id, fields, end_stream, false, names);
}

Result<void> Session::submit_interim(int32_t stream_id, std::span<const Field> fields,
                                     NameCase names) {
  return submit_head(stream_id, fields, false, true, names);
}

size_t Session::available_streams() const {
  if (role_ != Role::kClient || dead_ || failed_ || goaway_received_) return 0;
  const uint32_t limit =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return limit > client_streams_ ? limit - client_streams_ : 0;
}

Result<int32_t> Session::submit_request(std::span<const Field> fields, bool end_stream) {
  if (role_ != Role::kClient) return make_error(ErrorKind::kInternal, side(), "not a client");
  if (goaway_received_ || dead_ || failed_ ||
      nghttp2_session_check_request_allowed(session_) == 0) {
    return make_error(ErrorKind::kRefused, side(), "the connection takes no new streams");
  }
  if (available_streams() == 0) {
    return make_error(ErrorKind::kResource, side(), "no stream capacity");
  }
  auto* st = new (std::nothrow) Stream;
  if (st == nullptr) return make_error(ErrorKind::kResource, side(), "out of memory");
  std::vector<nghttp2_nv>& nv = nv_scratch();
  to_nv(lowercased(fields), nv);
  nghttp2_data_provider provider{};
  provider.source.ptr = st;
  provider.read_callback = Callbacks::read_data;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                            end_stream ? nullptr : &provider, st);
  if (id < 0) {
    delete st;
    return make_error(ErrorKind::kInternal, side(), nghttp2_strerror(id));
  }
  st->id = id;
  st->known = true;
  st->has_provider = !end_stream;
  st->end_queued = end_stream;
  link(st);
  ++client_streams_;
  ++counters_.streams_opened;
  return id;
}

Result<void> Session::send_data(int32_t stream_id, std::span<const uint8_t> bytes,
                                bool end_stream) {
  Stream* st = find(stream_id);
  if (st == nullptr || !st->has_provider || st->end_queued || st->owner_reset) {
    return make_error(ErrorKind::kInternal, side(), "stream cannot take data");
  }
  st->queue.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  st->end_queued = end_stream;
  if (st->deferred && (!bytes.empty() || end_stream)) {
    st->deferred = false;
    nghttp2_session_resume_data(session_, stream_id);
  }
  return {};
}

Result<void> Session::send_trailers(int32_t stream_id, std::span<const Field> fields) {
  Stream* st = find(stream_id);
  if (st == nullptr || !st->has_provider || st->end_queued || st->owner_reset) {
    return make_error(ErrorKind::kInternal, side(), "stream cannot take trailers");
  }
  st->trailers.clear();
  for (const Field& f : fields) st->trailers.add_lowercase(f.name, f.value);
  st->has_trailers = true;
  st->end_queued = true;
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(session_, stream_id);
  }
  return {};
}

size_t Session::queued(int32_t stream_id) const {
  const Stream* st = find(stream_id);
  return st == nullptr ? 0 : st->queue.size() - st->queue_at;
}

void Session::reset(int32_t stream_id, uint32_t code) {
  Stream* st = find(stream_id);
  if (st == nullptr || st->owner_reset) return;
  st->owner_reset = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, code);
}

void Session::consume(int32_t stream_id, size_t n) {
  Stream* st = find(stream_id);
  if (st == nullptr) return;
  n = std::min(n, st->unconsumed);
  st->unconsumed -= n;
  if (n > 0) nghttp2_session_consume(session_, stream_id, n);
}

void Session::start_drain() {
  if (dead_) return;
  owner_goaway_ = true;
  if (role_ == Role::kClient) {
    goaway(kNoError);
    return;
  }
  nghttp2_submit_shutdown_notice(session_);
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, kDrainPing.data());
  draining_ = true;
}

void Session::goaway(uint32_t code) {
  if (dead_) return;
  owner_goaway_ = true;
  draining_ = false;
  if (code != kNoError) {
    nghttp2_session_terminate_session(session_, code);
    return;
  }
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), code, nullptr, 0);
}

}  // namespace ringside::http2
