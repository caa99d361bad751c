#include "h2_link.h"

namespace ringside::bench {

H2Link::H2Link(const H2Request& request, const http2::Settings& settings)
    : request_(request), session_(http2::Role::kClient, *this, settings) {}

bool H2Link::start(uint64_t origin, uint64_t deadline) {
  if (failed_) return false;
  const bool has_body = !request_.body.empty();
  auto id = session_.submit_request(request_.head.fields(), !has_body);
  if (!id.ok()) return false;
  if (has_body) {
    auto body = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(request_.body.data()),
                                         request_.body.size());
    (void)session_.send_data(*id, body, true);  // a stream just opened always takes data
  }
  pending_.push_back(Pending{*id, origin, deadline, 0, kGrpcStatusMissing});
  return true;
}

bool H2Link::receive(std::span<const uint8_t> bytes) {
  if (failed_) return false;
  auto consumed = session_.receive(bytes);
  if (!consumed.ok()) {
    failed_ = true;
    if (error_.empty()) error_ = std::string(consumed.error().what);
  }
  return !failed_;
}

size_t H2Link::cancel_expired(uint64_t now) {
  size_t cancelled = 0;
  for (size_t i = 0; i < pending_.size();) {
    if (pending_[i].deadline >= now) {
      ++i;
      continue;
    }
    session_.reset(pending_[i].id, http2::kCancel);
    pending_[i] = pending_.back();
    pending_.pop_back();
    ++cancelled;
  }
  return cancelled;
}

H2Link::Pending* H2Link::find(int32_t stream_id) {
  for (Pending& pending : pending_) {
    if (pending.id == stream_id) return &pending;
  }
  return nullptr;
}

void H2Link::finish(int32_t stream_id, H2Outcome::Kind kind, uint32_t code) {
  Pending* pending = find(stream_id);
  if (pending == nullptr) return;  // cancelled, or already finished
  finished_.push_back(H2Outcome{kind, pending->origin, pending->status, pending->grpc_slot, code});
  *pending = pending_.back();
  pending_.pop_back();
}

void H2Link::on_head(int32_t stream_id, const http2::Head& head) {
  Pending* pending = find(stream_id);
  if (pending == nullptr || head.interim) return;
  uint64_t status = 0;
  for (const http2::Field& field : head.fields) {
    if (field.name == ":status" && http2::parse_decimal(field.value, status)) break;
  }
  pending->status = static_cast<int>(status);
  // A Trailers-Only response: grpc-status rides in the only head.
  if (request_.grpc && head.end_stream) pending->grpc_slot = grpc_status_slot(head.fields);
}

void H2Link::on_data(int32_t stream_id, std::span<const uint8_t> data) {
  session_.consume(stream_id, data.size());  // read and dropped: open the window at once
}

void H2Link::on_trailers(int32_t stream_id, std::span<const http2::Field> fields) {
  Pending* pending = find(stream_id);
  if (pending != nullptr && request_.grpc) pending->grpc_slot = grpc_status_slot(fields);
}

void H2Link::on_end(int32_t stream_id) { finish(stream_id, H2Outcome::Kind::kResponse, 0); }

void H2Link::on_reset(int32_t stream_id, uint32_t code, bool sent_by_us) {
  (void)sent_by_us;
  finish(stream_id, H2Outcome::Kind::kReset, code);
}

void H2Link::on_close(int32_t stream_id, uint32_t code) {
  finish(stream_id, H2Outcome::Kind::kClosed, code);
}

void H2Link::on_goaway(int32_t last_stream_id, uint32_t code) {
  (void)last_stream_id;
  (void)code;
}

void H2Link::on_connection_error(const http2::ConnectionError& error) {
  failed_ = true;
  if (error_.empty()) error_ = std::string(error.reason);
}

}  // namespace ringside::bench
