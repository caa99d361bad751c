// Active health checks (include/ringside/health.h).
#include "ringside/health.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <span>

#include "net/blocking_client.h"
#include "net/socket.h"
#include "ringside/grpc.h"
#include "ringside/http.h"
#include "ringside/http2.h"
#include "ringside/log.h"

namespace ringside::health {

namespace {

using Clock = std::chrono::steady_clock;

// A connected socket for one check, closed with it.
using Probe = net::BlockingConnection;

Outcome failed(const Probe& probe) { return Outcome{false, probe.error()}; }

Outcome check_http(Probe& probe, const SocketAddress& address, const std::string& path) {
  const std::string request = "GET " + (path.empty() ? std::string("/") : path) +
                              " HTTP/1.1\r\nhost: " + address.to_string() +
                              "\r\nuser-agent: ringside-health-check\r\nconnection: close\r\n\r\n";
  if (!probe.send_all(request)) return failed(probe);
  http::ResponseParser parser;
  parser.expect_response_to(http::RequestKind::kOther);
  char buffer[4096];
  for (;;) {
    const ssize_t n = probe.receive(buffer, sizeof(buffer));
    if (n < 0) return failed(probe);
    if (n == 0) return Outcome{false, "closed before a response head"};
    const http::Step step = parser.parse(std::string_view(buffer, static_cast<size_t>(n)));
    if (step.event == http::Event::kError) {
      return Outcome{false, "invalid response: " + std::string(parser.error().reason)};
    }
    if (step.event == http::Event::kHead && !parser.head().interim()) {
      const uint16_t status = parser.head().status;
      if (status >= 200 && status < 300) return Outcome{true, {}};
      return Outcome{false, "HTTP " + std::to_string(status)};
    }
  }
}

// grpc.health.v1.Health/Check over h2c, with the HTTP/2 client codec.
class GrpcCheck final : public http2::Events {
 public:
  explicit GrpcCheck(http2::Settings settings) : session_(http2::Role::kClient, *this, settings) {}

  Outcome run(Probe& probe, const SocketAddress& address, const std::string& service) {
    const std::string authority = address.to_string();
    const http::Field fields[] = {{":method", "POST"},
                                  {":scheme", "http"},
                                  {":authority", authority},
                                  {":path", "/grpc.health.v1.Health/Check"},
                                  {"content-type", "application/grpc"},
                                  {"te", "trailers"},
                                  {"user-agent", "ringside-health-check"}};
    auto id = session_.submit_request(fields, false);
    if (!id.ok()) return Outcome{false, "cannot start the request"};
    // HealthCheckRequest{service}: field 1, a string (at most 127 bytes: one length byte).
    std::string message;
    if (!service.empty()) {
      message += '\x0a';
      message += static_cast<char>(service.size());
      message += service;
    }
    std::string body(5, '\0');
    body[4] = static_cast<char>(message.size());
    body += message;
    (void)session_.send_data(
        *id, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(body.data()), body.size()),
        true);
    std::string out;
    char buffer[4096];
    while (!ended_) {
      out.clear();
      session_.produce(out);
      if (!out.empty() && !probe.send_all(out)) return failed(probe);
      const ssize_t n = probe.receive(buffer, sizeof(buffer));
      if (n < 0) return failed(probe);
      if (n == 0) return Outcome{false, "closed before the call ended"};
      auto used = session_.receive(std::span<const uint8_t>(
          reinterpret_cast<const uint8_t*>(buffer), static_cast<size_t>(n)));
      if (!used.ok() || failed_) return Outcome{false, "HTTP/2 error"};
    }
    if (reset_) return Outcome{false, "stream reset"};
    if (status_ != 200) return Outcome{false, "HTTP " + std::to_string(status_)};
    if (grpc_status_ != 0) {
      return Outcome{false, "grpc-status " + std::to_string(grpc_status_)};
    }
    return serving() ? Outcome{true, {}} : Outcome{false, "NOT_SERVING"};
  }

  void on_head(int32_t, const http2::Head& head) override {
    if (head.interim) return;
    note(head.fields);
  }
  void on_data(int32_t id, std::span<const uint8_t> data) override {
    data_.append(reinterpret_cast<const char*>(data.data()), data.size());
    session_.consume(id, data.size());
  }
  void on_trailers(int32_t, std::span<const http2::Field> fields) override { note(fields); }
  void on_end(int32_t) override { ended_ = true; }
  void on_reset(int32_t, uint32_t, bool) override { reset_ = ended_ = true; }
  void on_close(int32_t, uint32_t) override { ended_ = true; }
  void on_goaway(int32_t, uint32_t) override {}
  void on_connection_error(const http2::ConnectionError&) override { failed_ = ended_ = true; }

 private:
  void note(std::span<const http2::Field> fields) {
    for (const http2::Field& f : fields) {
      if (f.name == ":status") status_ = std::atoi(std::string(f.value).c_str());
      if (f.name == "grpc-status") {
        const auto status = grpc::parse_status(f.value);
        grpc_status_ = status ? static_cast<int>(*status) : 2;
      }
    }
  }
  // HealthCheckResponse: field 1 (varint) is the status; SERVING is 1.
  bool serving() const {
    if (data_.size() < 5) return false;
    std::string_view m = std::string_view(data_).substr(5);
    while (!m.empty()) {
      const auto tag = static_cast<uint8_t>(m[0]);
      m.remove_prefix(1);
      if ((tag & 7) != 0 || m.empty()) return false;  // only varints expected
      uint64_t value = 0;
      int shift = 0;
      while (!m.empty()) {
        const auto b = static_cast<uint8_t>(m[0]);
        m.remove_prefix(1);
        value |= static_cast<uint64_t>(b & 0x7f) << shift;
        shift += 7;
        if ((b & 0x80) == 0) break;
      }
      if ((tag >> 3) == 1) return value == 1;
    }
    return false;
  }

  http2::Session session_;
  std::string data_;
  int status_ = 0;
  int grpc_status_ = -1;
  bool ended_ = false, reset_ = false, failed_ = false;
};

}  // namespace

Outcome check(const SocketAddress& address, const HealthCheckConfig& probe_config,
              std::chrono::milliseconds timeout, const tls::TlsContext* tls_context) {
  Probe probe(address, Clock::now() + timeout);
  if (!probe.ok()) return failed(probe);
  if (probe_config.tls && probe_config.kind != HealthCheckConfig::Kind::kTcp) {
    if (tls_context == nullptr) return Outcome{false, "no TLS client context yet"};
    const std::string_view alpn =
        probe_config.kind == HealthCheckConfig::Kind::kGrpc ? "h2" : "http/1.1";
    if (!probe.start_tls(tls_context->ctx(0), probe_config.sni, probe_config.verify_name, alpn)) {
      return failed(probe);
    }
  }
  switch (probe_config.kind) {
    case HealthCheckConfig::Kind::kTcp:
      return Outcome{true, {}};
    case HealthCheckConfig::Kind::kHttp:
      return check_http(probe, address, probe_config.arg);
    case HealthCheckConfig::Kind::kGrpc: {
      GrpcCheck grpc_check{http2::Settings{}};
      return grpc_check.run(probe, address, probe_config.arg);
    }
  }
  return Outcome{false, "unknown check"};
}

// ---- Checker ------------------------------------------------------------------------------

Checker::Checker(std::vector<Target> targets, HealthCheckTiming timing, ClientContext tls)
    : targets_(std::move(targets)), timing_(timing), tls_(std::move(tls)), apps_(targets_.size()) {
  bool any_app = false;
  for (const Target& t : targets_) any_app = any_app || t.cluster == nullptr;
  // A local app is ready only once it passed a check.
  app_ready_.store(!any_app, std::memory_order_release);
  if (any_app) app_status_ = "local app not checked yet";
}

Checker::~Checker() { stop(); }

void Checker::start() {
  if (targets_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void Checker::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::string Checker::app_status() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  return app_status_;
}

void Checker::record(State& state, const Outcome& outcome) {
  if (outcome.ok) {
    state.failures = 0;
    state.passed_once = true;
    if (!state.healthy && ++state.successes >= timing_.healthy_threshold) {
      state.healthy = true;
      state.successes = 0;
    }
    if (state.healthy) state.detail.clear();
    return;
  }
  state.successes = 0;
  state.detail = outcome.detail;
  if (state.healthy && ++state.failures >= timing_.unhealthy_threshold) {
    state.healthy = false;
    state.failures = 0;
  }
}

void Checker::run_once() {
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timing_.timeout);
  // Held for the round: the context stays alive whatever rotates meanwhile.
  const std::shared_ptr<const tls::TlsContext> tls_context = tls_ ? tls_() : nullptr;
  bool ready = true;
  std::string status;
  for (size_t t = 0; t < targets_.size(); ++t) {
    const Target& target = targets_[t];
    if (target.cluster == nullptr) {
      State& state = apps_[t];
      const bool was = state.healthy && state.passed_once;
      record(state, check(target.app, target.probe, timeout));
      const bool now = state.healthy && state.passed_once;
      if (was != now) {
        RS_LOG(now ? log::Level::kInfo : log::Level::kWarn, "local app %s %s%s%s",
               target.app.to_string().c_str(), now ? "healthy" : "unhealthy", now ? "" : ": ",
               state.detail.c_str());
      }
      if (!now && ready) {
        ready = false;
        status = "local app " + target.app.to_string() +
                 (state.passed_once ? " unhealthy: " : " not healthy yet: ") + state.detail;
      }
      continue;
    }
    const auto members = target.cluster->members();
    // Endpoints discovery dropped since the last round: their state goes with them.
    for (auto it = endpoints_.lower_bound({t, 0});
         it != endpoints_.end() && it->first.first == t;) {
      const bool present = std::any_of(members.begin(), members.end(),
                                       [&](const auto& m) { return m.first == it->first.second; });
      it = present ? std::next(it) : endpoints_.erase(it);
    }
    for (const auto& [id, address] : members) {
      State& state = endpoints_[{t, id}];
      const bool was = state.healthy;
      record(state, check(address, target.probe, timeout, tls_context.get()));
      if (was != state.healthy) {
        RS_LOG(state.healthy ? log::Level::kInfo : log::Level::kWarn, "cluster %s: %s %s%s%s",
               target.cluster->name().c_str(), address.to_string().c_str(),
               state.healthy ? "healthy again" : "unhealthy", state.healthy ? "" : ": ",
               state.detail.c_str());
      }
      target.cluster->set_health(id, state.healthy, state.detail);
    }
  }
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    app_status_ = status;
  }
  app_ready_.store(ready, std::memory_order_release);
}

void Checker::run() {
  log::set_thread_name("health");
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    lock.unlock();
    run_once();
    lock.lock();
    wake_.wait_for(lock, timing_.interval, [this] { return stop_; });
  }
}

}  // namespace ringside::health
