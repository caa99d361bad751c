#include "grpc_echo.h"

#include "ringside/grpc.h"

namespace ringside::bench {

namespace {

constexpr http2::Field kOkHead[] = {{":status", "200"}, {"content-type", "application/grpc"}};
constexpr http2::Field kOkTrailers[] = {{"grpc-status", "0"}};
constexpr http2::Field kTooLarge[] = {{":status", "200"},
                                      {"content-type", "application/grpc"},
                                      {"grpc-status", "8"},  // RESOURCE_EXHAUSTED
                                      {"grpc-message", "request too large"}};
constexpr http2::Field kNotFound[] = {{":status", "404"}, {"content-length", "0"}};
// The message of an empty request body: not compressed, zero bytes long.
constexpr uint8_t kEmptyMessage[5] = {0, 0, 0, 0, 0};

}  // namespace

GrpcEcho::GrpcEcho(const http2::Settings& settings)
    : session_(http2::Role::kServer, *this, settings) {}

bool GrpcEcho::receive(std::span<const uint8_t> bytes) {
  if (failed_) return false;
  if (!session_.receive(bytes).ok()) failed_ = true;
  return !failed_;
}

GrpcEcho::Call* GrpcEcho::find(int32_t stream_id) {
  for (Call& call : streams_) {
    if (call.id == stream_id) return &call;
  }
  return nullptr;
}

void GrpcEcho::forget(int32_t stream_id) {
  Call* call = find(stream_id);
  if (call == nullptr) return;
  call->body.clear();
  if (call->body.capacity() <= 64 * 1024) spare_.push_back(std::move(call->body));
  *call = std::move(streams_.back());
  streams_.pop_back();
}

void GrpcEcho::on_head(int32_t stream_id, const http2::Head& head) {
  bool post = false;
  bool grpc = false;
  for (const http2::Field& field : head.fields) {
    if (field.name == ":method") {
      post = field.value == "POST";
    } else if (field.name == "content-type") {
      grpc = ringside::grpc::is_grpc_content_type(field.value);
    }
  }
  if (!post || !grpc) {
    // The rest of the request, if any, is read and dropped (on_data consumes it).
    (void)session_.submit_response(stream_id, kNotFound, true);
    return;
  }
  Call call{stream_id, false, {}};
  if (!spare_.empty()) {
    call.body = std::move(spare_.back());
    spare_.pop_back();
  }
  streams_.push_back(std::move(call));
}

void GrpcEcho::on_data(int32_t stream_id, std::span<const uint8_t> data) {
  // Held (or dropped) at once: the window opens as the bytes arrive; kMaxEchoBody bounds
  // what one call holds.
  session_.consume(stream_id, data.size());
  Call* call = find(stream_id);
  if (call == nullptr || call->too_large) return;
  if (call->body.size() + data.size() > kMaxEchoBody) {
    call->too_large = true;
    call->body.clear();
    return;
  }
  call->body.append(reinterpret_cast<const char*>(data.data()), data.size());
}

void GrpcEcho::on_trailers(int32_t stream_id, std::span<const http2::Field> fields) {
  (void)stream_id;  // a unary request has none worth reading; on_end follows
  (void)fields;
}

void GrpcEcho::on_end(int32_t stream_id) {
  Call* call = find(stream_id);
  if (call == nullptr) return;  // answered with 404 already
  if (call->too_large) {
    (void)session_.submit_response(stream_id, kTooLarge, true);
  } else if (session_.submit_response(stream_id, kOkHead, false).ok()) {
    std::span<const uint8_t> message(kEmptyMessage);
    if (!call->body.empty()) {
      message = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(call->body.data()),
                                         call->body.size());
    }
    if (session_.send_data(stream_id, message, false).ok() &&
        session_.send_trailers(stream_id, kOkTrailers).ok()) {
      ++calls_;
    }
  }
  forget(stream_id);
}

void GrpcEcho::on_reset(int32_t stream_id, uint32_t code, bool sent_by_us) {
  (void)code;
  (void)sent_by_us;
  forget(stream_id);
}

void GrpcEcho::on_close(int32_t stream_id, uint32_t code) {
  (void)code;
  forget(stream_id);
}

void GrpcEcho::on_goaway(int32_t last_stream_id, uint32_t code) {
  (void)last_stream_id;  // the client opens no more streams; the open ones finish
  (void)code;
}

void GrpcEcho::on_connection_error(const http2::ConnectionError& error) {
  (void)error;
  failed_ = true;
}

}  // namespace ringside::bench
