// libFuzzer target: a server-role http2::Session on arbitrary bytes (after a valid client
// preface, so the fuzzer spends its time on frames). The owner answers every request with
// a small response, body and trailers, and consumes what it receives, so the send paths
// and flow control run too. Small limits make every bound reachable.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "ringside/http2.h"

namespace {

using ringside::http2::Field;

class Owner : public ringside::http2::Events {
 public:
  ringside::http2::Session* session = nullptr;

  void on_head(int32_t id, const ringside::http2::Head& head) override {
    if (head.fields.empty()) __builtin_trap();
    const Field status[] = {{":status", "200"}};
    (void)session->submit_response(id, status, false);
    const uint8_t body[] = {'o', 'k'};
    (void)session->send_data(id, body, false);
    const Field trailers[] = {{"x-done", "1"}};
    (void)session->send_trailers(id, trailers);
  }
  void on_data(int32_t id, std::span<const uint8_t> data) override {
    session->consume(id, data.size());
  }
  void on_trailers(int32_t, std::span<const Field>) override {}
  void on_end(int32_t) override {}
  void on_reset(int32_t, uint32_t, bool) override {}
  void on_close(int32_t, uint32_t) override {}
  void on_goaway(int32_t, uint32_t) override {}
  void on_connection_error(const ringside::http2::ConnectionError&) override { ++errors; }
  int errors = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ringside::http2::Settings settings;
  settings.max_concurrent_streams = 8;
  settings.max_headers = 20;
  settings.max_header_list = 2048;
  settings.initial_stream_window = 1024;
  settings.glitch_burst = 50;
  settings.reset_burst = 50;
  Owner owner;
  ringside::http2::Session session(ringside::http2::Role::kServer, owner, settings);
  owner.session = &session;
  std::string out;
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  (void)session.receive(std::span(reinterpret_cast<const uint8_t*>(kPreface), sizeof kPreface - 1));
  // The input arrives in pieces of up to 255 bytes (its first byte says how long), as
  // records would, with output produced between them.
  std::span<const uint8_t> in(data, size);
  const size_t piece = size > 0 && data[0] != 0 ? data[0] : 255;
  while (!in.empty()) {
    const size_t n = in.size() < piece ? in.size() : piece;
    const auto r = session.receive(in.first(n));
    in = in.subspan(n);
    session.produce(out);
    out.clear();
    if (!r.ok()) {
      if (owner.errors != 1) __builtin_trap();
      break;
    }
  }
  if (owner.errors > 1) __builtin_trap();
  return 0;
}
