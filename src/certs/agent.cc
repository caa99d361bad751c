// The rotation agent (see rotation.h): one thread that turns certificate sources into
// published TLS generations and reclaims the ones they replace.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "certs/acme.h"
#include "certs/sources.h"
#include "ringside/file_watcher.h"
#include "ringside/json.h"
#include "ringside/log.h"
#include "ringside/rotation.h"

namespace ringside::certs {
namespace {

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class RotationAgent::Impl {
 public:
  Impl(const Config& config, std::vector<TlsListener> listeners, unsigned workers,
       WorkerQuiescence quiescence, RotationTuning tuning)
      : config_(config),
        listeners_(std::move(listeners)),
        workers_(workers == 0 ? 1 : workers),
        tuning_(tuning),
        reclaimer_(std::move(quiescence)) {
    IssuingOptions issuing;
    issuing.service_name = config.service_name;
    issuing.spiffe_id = config.spiffe_id;
    issuing.key_type = config.key_type;
    issuing.lifetime = config.cert_lifetime;
    issuing.renew_after = config.cert_renew_after;
    issuing.cert_dir = config.cert_dir;
    if (!config.cert_path.empty()) {
      source_ = make_file_source(config.cert_path, config.key_path);
    } else if (!config.ca_cert_path.empty()) {
      source_ = make_local_issuer(config.ca_cert_path, config.ca_key_path, issuing);
    } else if (!config.ca_url.empty()) {
      std::string trust, why;
      if (!config.trust_path.empty()) read_whole_file(config.trust_path, &trust, &why);
      issuing.reuse_trust_pem = trust;
      RemoteCaOptions remote;
      remote.url = config.ca_url;
      remote.timeout = tuning.ca_timeout;
      remote.trust_path = config.ca_trust_path;
      remote.client_cert_path = config.ca_client_cert_path;
      remote.client_key_path = config.ca_client_key_path;
      remote.auth_key_path = config.ca_auth_key_path;
      source_ = make_remote_ca(std::move(remote), issuing);
    } else if (!config.acme_directory.empty()) {
      std::string why;
      if (!config.trust_path.empty())
        read_whole_file(config.trust_path, &issuing.reuse_trust_pem, &why);
      AcmeOptions acme;
      acme.directory_url = config.acme_directory;
      acme.trust_path = config.ca_trust_path;
      acme.http_address = config.acme_http_address;
      acme.timeout = tuning.ca_timeout;
      acme.workers = workers_;
      source_ = make_acme_source(std::move(acme), issuing);
    }
    status_.source = source_ ? std::string(source_->name()) : "none";
    for (const TlsListener& listener : listeners_) status_.listeners.emplace_back(listener.name, 0);
    // Backoff for the issuing sources: full jitter under a ceiling from 1 s, doubling,
    // capped at an eighth of the renewal window (so several retries fit before expiry),
    // between 1 s and 5 min.
    auto window = std::chrono::duration_cast<std::chrono::milliseconds>(config.cert_lifetime -
                                                                        config.cert_renew_after);
    backoff_cap_ms_ = std::clamp<int64_t>(window.count() / 8, 1000, 300000);
  }

  ~Impl() {
    stop();
    if (wake_fd_ >= 0) ::close(wake_fd_);
    // Workers are stopped: every slot is left pointing at current_, freed with it; the
    // reclaimer frees the rest.
  }

  Result<void> initialize(std::string* detail) {
    std::string why;
    if (HttpUrl url; !config_.ca_url.empty() && !parse_http_url(config_.ca_url, &url, &why)) {
      *detail = "--ca-url '" + config_.ca_url + "': " + why;  // a typo is no outage
      return make_error(ErrorKind::kConfig, Side::kInternal, "certificate");
    }
    AttemptResult result = attempt(/*renew=*/false, /*initial=*/true, &why);
    if (result != AttemptResult::kFailed) return {};
    if (!remote_source() || !source_) {
      *detail = why;
      return make_error(ErrorKind::kConfig, Side::kInternal, "certificate");
    }
    // A remote CA that is down (or answers badly) at the first start, with no stored
    // certificate: under an orchestrator, exiting is a crash loop. Start without one;
    // the TLS listeners refuse connections and /ready answers 503 until the agent's
    // retries (backoff with jitter, the CA's Retry-After) get the first one.
    record_failure(why);
    failures_in_series_ = 1;
    const int64_t delay_ms =
        retry_delay_ms(1, 1000, backoff_cap_ms_, uniform(), source_->retry_after_ms());
    retry_at_ms_ = steady_now_ms() + delay_ms;
    RS_WARN(
        "no certificate yet: %s; starting anyway: the TLS listeners refuse connections and "
        "/ready answers 503 until the CA answers; retrying in %lld ms",
        why.c_str(), static_cast<long long>(delay_ms));
    return {};
  }

  bool published() const { return published_.load(std::memory_order_acquire); }

  std::shared_ptr<const tls::TlsContext> control_client_context() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return control_client_;
  }

  Result<void> start(std::string* detail) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
      *detail = std::string("eventfd: ") + std::strerror(errno);
      return make_error(ErrorKind::kResource, Side::kInternal, "eventfd", errno);
    }
    setup_watches();
    thread_ = std::thread([this] { run(); });
    return {};
  }

  void stop() {
    if (!thread_.joinable()) return;
    stop_.store(true, std::memory_order_release);
    if (source_) source_->cancel();  // an ACME order waiting on a pending authorization
    wake();
    thread_.join();
  }

  void request_rotation() {
    rotate_requested_.store(true, std::memory_order_release);
    wake();
  }

  AttemptResult attempt_now(bool renew) {
    std::string why;
    AttemptResult result = attempt(renew, false, &why);
    if (result == AttemptResult::kFailed) record_failure(why);
    return result;
  }

  size_t collect_now() {
    size_t freed = reclaimer_.collect();
    update_live();
    return freed;
  }

  RotationStatus status() const {
    std::lock_guard<std::mutex> lock(mutex_);
    RotationStatus copy = status_;
    copy.rotations = rotations_.load(std::memory_order_relaxed);
    copy.rotations_failed = rotations_failed_.load(std::memory_order_relaxed);
    copy.generations_live = generations_live_.load(std::memory_order_relaxed);
    return copy;
  }

  std::string render_json() const {
    RotationStatus s = status();
    int64_t now = unix_now();
    std::string out =
        "{\"source\":\"" + s.source + "\",\"generation\":" + std::to_string(s.generation);
    if (s.has_certificate) {
      out += ",\"serial\":\"" + s.cert.serial_hex + "\",\"sans\":[";
      for (size_t i = 0; i < s.cert.dns_sans.size(); ++i) {
        out += (i ? ",\"" : "\"") + json_escape(s.cert.dns_sans[i]) + "\"";
      }
      out += "],\"uri_sans\":[";
      for (size_t i = 0; i < s.cert.uri_sans.size(); ++i) {
        out += (i ? ",\"" : "\"") + json_escape(s.cert.uri_sans[i]) + "\"";
      }
      out += "],\"subject\":\"" + json_escape(s.cert.subject) + "\",\"issuer\":\"" +
             json_escape(s.cert.issuer) + "\",\"key_type\":\"" +
             std::string(tls::to_string(s.cert.key_type)) + "\",\"not_before\":\"" +
             iso_time(s.cert.not_before) + "\",\"not_after\":\"" + iso_time(s.cert.not_after) +
             "\",\"expires_in_seconds\":" + std::to_string(s.cert.not_after - now) +
             ",\"sha256\":\"" + s.cert.sha256_hex + "\"";
    }
    out += ",\"next_renewal\":";
    out += s.next_renewal != 0 ? "\"" + iso_time(s.next_renewal) + "\"" : "null";
    out += ",\"trust_cas\":" + std::to_string(s.trust_cas);
    out += ",\"rotations\":" + std::to_string(s.rotations) +
           ",\"rotations_failed\":" + std::to_string(s.rotations_failed) +
           ",\"consecutive_failures\":" + std::to_string(s.consecutive_failures) +
           ",\"generations_live\":" + std::to_string(s.generations_live) + ",\"last_error\":";
    if (s.last_error.empty()) {
      out += "null";
    } else {
      out += "{\"time\":\"" + iso_time(s.last_error_time) + "\",\"reason\":\"" +
             json_escape(s.last_error) + "\"}";
    }
    out += ",\"listeners\":[";
    for (size_t i = 0; i < s.listeners.size(); ++i) {
      out += (i ? "," : "") + std::string("{\"listener\":\"") + json_escape(s.listeners[i].first) +
             "\",\"generation\":" + std::to_string(s.listeners[i].second) + "}";
    }
    out += "]}\n";
    return out;
  }

  std::string render_prometheus() const {
    RotationStatus s = status();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, const std::string& v) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
             name + " " + v + "\n";
    };
    metric("ringside_cert_rotations_total", "counter",
           "Certificate or trust generations published after the first.",
           std::to_string(s.rotations));
    metric("ringside_cert_rotations_failed_total", "counter",
           "Rotations refused or failed (bad material, CA unreachable); the old certificate "
           "stayed.",
           std::to_string(s.rotations_failed));
    metric("ringside_cert_renewal_failures_consecutive", "gauge",
           "Failed attempts since the last successful rotation.",
           std::to_string(s.consecutive_failures));
    if (s.has_certificate) {
      metric("ringside_cert_expiry_seconds", "gauge",
             "Seconds until the served certificate expires.",
             std::to_string(s.cert.not_after - unix_now()));
    }
    if (s.next_renewal != 0) {
      metric("ringside_cert_next_renewal_seconds", "gauge", "Seconds until the next renewal.",
             std::to_string(s.next_renewal - unix_now()));
    }
    metric("ringside_tls_generation", "gauge", "The current TLS generation number.",
           std::to_string(s.generation));
    metric("ringside_tls_generations_live", "gauge",
           "TLS context generations alive: the current one plus replaced ones that open "
           "connections or workers may still use.",
           std::to_string(s.generations_live));
    return out;
  }

 private:
  void wake() {
    if (wake_fd_ < 0) return;
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }

  // ---- one attempt ----------------------------------------------------------------------

  AttemptResult attempt(bool renew, bool initial, std::string* why) {
    int64_t now = unix_now();

    // The trust bundle: a new one is adopted only if it is sound.
    std::string trust = current_trust_;
    size_t trust_cas = status_trust_cas_;
    std::string trust_problem;
    if (!config_.trust_path.empty()) {
      std::string text, detail;
      if (!read_whole_file(config_.trust_path, &text, &detail)) {
        trust_problem = "--trust " + detail;
      } else if (initial || text != current_trust_) {
        size_t cas = count_trust_cas(text, &detail);
        if (cas == 0) {
          trust_problem =
              "--trust " + config_.trust_path + ": " + detail + "; keeping the current bundle";
        } else {
          trust = std::move(text);
          trust_cas = cas;
        }
      }
    } else if (source_) {
      trust = source_->implied_trust();
      trust_cas = trust.empty() ? 0 : tls::inspect_bundle(trust).size();
    }
    if (initial && !trust_problem.empty()) {
      *why = trust_problem;
      return AttemptResult::kFailed;
    }

    // The identity.
    tls::Identity identity = current_identity_;
    bool have_identity = has_identity_;
    if (source_) {
      std::string detail;
      auto obtained = obtain_reclaiming(initial, renew, &detail);
      if (!obtained.ok()) {
        *why = detail;
        return AttemptResult::kFailed;
      }
      identity = std::move(*obtained);
      have_identity = true;
      // A remote CA may take seconds: validate, and count the schedule, from its answer.
      now = unix_now();
    }
    tls::CertInfo info;
    if (have_identity) {
      std::string detail;
      // Egress-only sidecars may name no service; then any SAN is accepted.
      auto valid = tls::validate_identity(identity, trust, config_.service_name, now, &detail);
      if (!valid.ok()) {
        *why = "certificate rejected: " + detail;
        return AttemptResult::kFailed;
      }
      info = std::move(*valid);
    }

    if (!initial && identity.cert_chain_pem == current_identity_.cert_chain_pem &&
        identity.key_pem == current_identity_.key_pem && trust == current_trust_) {
      if (!trust_problem.empty()) {
        *why = trust_problem;
        return AttemptResult::kFailed;
      }
      return AttemptResult::kUnchanged;
    }

    // Build every listener's context before publishing any: all or nothing.
    const uint64_t id = next_generation_;
    std::vector<std::unique_ptr<TlsGeneration>> built;
    for (const TlsListener& listener : listeners_) {
      tls::ContextOptions options;
      options.tls13_only = config_.tls13_only;
      options.alpn = listener.alpn;
      const tls::Identity* with = have_identity ? &identity : nullptr;
      if (listener.kind == ListenerKind::kIngress) {
        options.role = tls::Role::kServer;
        options.client_cert = listener.client_cert;
        options.no_tickets = listener.no_tickets;
        if (listener.client_cert != tls::ClientCertMode::kNone) {
          if (trust.empty()) {
            *why = listener.name + ": client-cert needs a trust bundle (--trust)";
            return AttemptResult::kFailed;
          }
          options.trust_pem = trust;
        }
        if (with == nullptr) {
          *why = listener.name + ": an ingress listener needs a certificate";
          return AttemptResult::kFailed;
        }
      } else {
        options.role = tls::Role::kClient;
        if (trust.empty()) {
          *why = listener.name + ": egress TLS needs a trust bundle (--trust)";
          return AttemptResult::kFailed;
        }
        options.trust_pem = trust;
      }
      std::string detail;
      auto context = tls::TlsContext::create(options, with, workers_, &detail);
      if (!context.ok()) {
        *why = listener.name + ": " + detail;
        return AttemptResult::kFailed;
      }
      built.push_back(std::make_unique<TlsGeneration>(std::move(*context), id, workers_));
    }

    // The control threads' client context (TLS health checks of egress services): one
    // WOLFSSL_CTX, shared by pointer, so a check in progress keeps its own alive.
    std::shared_ptr<const tls::TlsContext> control_client;
    if (!trust.empty() &&
        std::any_of(listeners_.begin(), listeners_.end(),
                    [](const TlsListener& l) { return l.kind == ListenerKind::kEgress; })) {
      tls::ContextOptions options;
      options.role = tls::Role::kClient;
      options.tls13_only = config_.tls13_only;
      options.trust_pem = trust;
      std::string detail;
      auto context =
          tls::TlsContext::create(options, have_identity ? &identity : nullptr, 1, &detail);
      if (!context.ok()) {
        *why = "control client context: " + detail;
        return AttemptResult::kFailed;
      }
      control_client = std::move(*context);
    }

    // Publish: one release store per slot; the replaced generations go to the reclaimer.
    ++next_generation_;
    for (size_t i = 0; i < listeners_.size(); ++i) listeners_[i].slot->publish(built[i].get());
    if (!current_.empty()) reclaimer_.retire(std::move(current_));
    current_ = std::move(built);
    if (source_ && have_identity && identity.cert_chain_pem != current_identity_.cert_chain_pem) {
      source_->installed(identity);
    }
    current_identity_ = std::move(identity);
    has_identity_ = have_identity;
    current_trust_ = std::move(trust);
    status_trust_cas_ = trust_cas;
    if (!initial) rotations_.fetch_add(1, std::memory_order_relaxed);
    if (!published_.exchange(true, std::memory_order_acq_rel) && failures_in_series_ != 0) {
      RS_INFO("first certificate published after %u failed attempts: serving", failures_in_series_);
    }
    update_live();

    int64_t next_renewal = 0;
    if (source_ && source_->scheduled()) {
      next_renewal = renewal_time(info, now, config_.cert_lifetime, config_.cert_renew_after,
                                  config_.cert_renew_jitter_percent, uniform());
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      control_client_ = std::move(control_client);
      status_.generation = id;
      status_.has_certificate = have_identity;
      status_.cert = info;
      status_.trust_cas = trust_cas;
      status_.next_renewal = next_renewal;
      status_.consecutive_failures = 0;
      for (auto& listener : status_.listeners) listener.second = id;
      if (trust_problem.empty()) status_.last_error.clear();
    }
    next_renewal_unix_ = next_renewal;
    if (have_identity) {
      RS_INFO("generation %llu published: serial %s, SAN %s, %s, expires %s%s%s",
              static_cast<unsigned long long>(id), info.serial_hex.c_str(),
              info.dns_sans.empty() ? "-" : info.dns_sans.front().c_str(),
              std::string(tls::to_string(info.key_type)).c_str(), iso_time(info.not_after).c_str(),
              next_renewal != 0 ? ", renewal at " : "",
              next_renewal != 0 ? iso_time(next_renewal).c_str() : "");
    } else {
      RS_INFO("generation %llu published: trust bundle with %zu CAs",
              static_cast<unsigned long long>(id), trust_cas);
    }
    if (!trust_problem.empty()) {
      *why = trust_problem;
      record_failure(trust_problem);
    }
    return AttemptResult::kPublished;
  }

  // source_->obtain(), which for a remote CA waits on the network (up to the CA timeout).
  // It runs on a thread of its own while this one keeps freeing retired generations, so
  // that a slow CA never holds old certificates (and their connections' memory) alive.
  Result<tls::Identity> obtain_reclaiming(bool initial, bool renew, std::string* detail) {
    if (!remote_source()) return source_->obtain(initial, renew, detail);
    std::promise<Result<tls::Identity>> promise;
    auto answer = promise.get_future();
    std::string why;
    std::thread call([&] {
      log::set_thread_name("ca");
      promise.set_value(source_->obtain(initial, renew, &why));
    });
    while (answer.wait_for(tuning_.reclaim_interval) != std::future_status::ready) {
      if (reclaimer_.pending() != 0 && reclaimer_.collect() != 0) update_live();
    }
    call.join();
    *detail = std::move(why);
    return answer.get();
  }

  // A CA on the network (cfssl or ACME): it may be down at start and slow to answer.
  bool remote_source() const { return !config_.ca_url.empty() || !config_.acme_directory.empty(); }

  void record_failure(const std::string& why) {
    rotations_failed_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mutex_);
    status_.last_error = why;
    status_.last_error_time = unix_now();
    ++status_.consecutive_failures;
  }

  void update_live() {
    generations_live_.store((current_.empty() ? 0 : 1) + reclaimer_.pending(),
                            std::memory_order_relaxed);
  }

  // ---- the thread -----------------------------------------------------------------------

  void setup_watches() {
    std::vector<std::string> paths;
    if (source_) paths = source_->watched_paths();
    if (!config_.trust_path.empty()) paths.push_back(config_.trust_path);
    watcher_.watch(std::move(paths));
  }

  void run() {
    log::set_thread_name("rot");
    const bool scheduled = source_ && source_->scheduled();
    while (!stop_.load(std::memory_order_acquire)) {
      int64_t now_ms = steady_now_ms();
      int64_t wake_at = std::min(now_ms + 1000, watcher_.next_deadline());
      if (retry_at_ms_ != 0) wake_at = std::min(wake_at, retry_at_ms_);
      if (scheduled && next_renewal_unix_ != 0 && retry_at_ms_ == 0) {
        int64_t until = (next_renewal_unix_ - unix_now()) * 1000;
        wake_at = std::min(wake_at, now_ms + std::max<int64_t>(until, 0));
      }
      if (reclaimer_.pending() != 0) {
        wake_at = std::min(wake_at, now_ms + tuning_.reclaim_interval.count());
      }
      pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {watcher_.fd(), POLLIN, 0}};
      int timeout = static_cast<int>(std::max<int64_t>(wake_at - now_ms, 0));
      int n = ::poll(fds, watcher_.fd() >= 0 ? 2 : 1, timeout);
      if (n < 0 && errno != EINTR) {
        RS_ERROR("rotation agent: poll: %s", std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      now_ms = steady_now_ms();
      if (n > 0 && (fds[0].revents & POLLIN)) {
        uint64_t value;
        ssize_t ignored = ::read(wake_fd_, &value, sizeof(value));
        (void)ignored;
      }
      if (stop_.load(std::memory_order_acquire)) break;
      const bool files_due = watcher_.due(now_ms, n > 0 && (fds[1].revents & POLLIN));

      if (rotate_requested_.exchange(false, std::memory_order_acq_rel)) {
        RS_INFO("rotation requested (POST /rotate)");
        begin_series(now_ms, /*renew=*/scheduled);
      } else if (files_due) {
        watcher_.handled();
        begin_series(now_ms, /*renew=*/false);
      } else if (retry_at_ms_ != 0 && now_ms >= retry_at_ms_) {
        retry_at_ms_ = 0;
        run_attempt(now_ms);
      } else if (scheduled && retry_at_ms_ == 0 && next_renewal_unix_ != 0 &&
                 unix_now() >= next_renewal_unix_) {
        begin_series(now_ms, /*renew=*/true);
      }

      if (reclaimer_.pending() != 0) {
        size_t freed = reclaimer_.collect();
        if (freed != 0) update_live();
      }
    }
  }

  void begin_series(int64_t now_ms, bool renew) {
    series_renew_ = renew;
    file_retries_left_ = tuning_.file_retries;
    failures_in_series_ = 0;
    run_attempt(now_ms);
  }

  void run_attempt(int64_t now_ms) {
    std::string why;
    // Until the first publication (a remote CA that has not answered since start-up)
    // every attempt is the initial one.
    AttemptResult result = attempt(series_renew_, /*initial=*/!published(), &why);
    if (result != AttemptResult::kFailed) {
      retry_at_ms_ = 0;
      if (result == AttemptResult::kUnchanged) {
        RS_DEBUG("certificate material unchanged: nothing to publish");
      }
      return;
    }
    const bool scheduled = source_ && source_->scheduled();
    if (!scheduled && file_retries_left_ > 0) {
      // A writer may be half-way through replacing the pair: look again shortly, and
      // count the failure only if it persists.
      --file_retries_left_;
      retry_at_ms_ = now_ms + tuning_.file_retry.count();
      RS_DEBUG("certificate files not usable yet (%s); retrying", why.c_str());
      return;
    }
    record_failure(why);
    if (!scheduled) {
      RS_WARN("rotation refused, keeping generation %llu: %s",
              static_cast<unsigned long long>(next_generation_ - 1), why.c_str());
      return;
    }
    ++failures_in_series_;
    const int64_t delay_ms = retry_delay_ms(failures_in_series_, 1000, backoff_cap_ms_, uniform(),
                                            source_->retry_after_ms());
    // From when the attempt ended: a CA's Retry-After counts from its answer.
    retry_at_ms_ = std::max(now_ms, steady_now_ms()) + delay_ms;
    const std::string retry_in =
        delay_ms < 1000 ? std::to_string(delay_ms) + "ms" : human_seconds(delay_ms / 1000);
    int64_t left = status().cert.not_after - unix_now();
    if (left <= 0) {
      RS_ERROR("renewal failed: %s; the certificate EXPIRED %s ago; retrying in %s", why.c_str(),
               human_seconds(-left).c_str(), retry_in.c_str());
    } else {
      int64_t window = std::chrono::duration_cast<std::chrono::seconds>(config_.cert_lifetime -
                                                                        config_.cert_renew_after)
                           .count();
      auto level = left < window / 2 ? log::Level::kError : log::Level::kWarn;
      RS_LOG(level,
             "renewal failed: %s; keeping the current certificate, which expires in %s; "
             "retrying in %s",
             why.c_str(), human_seconds(left).c_str(), retry_in.c_str());
    }
  }

  const Config config_;
  std::vector<TlsListener> listeners_;
  const unsigned workers_;
  const RotationTuning tuning_;
  std::unique_ptr<CertificateSource> source_;

  // Agent thread only (or the caller of initialize()/attempt_now() before start()).
  GenerationReclaimer reclaimer_;
  std::vector<std::unique_ptr<TlsGeneration>> current_;  // one per listener
  tls::Identity current_identity_;
  bool has_identity_ = false;
  std::string current_trust_;
  size_t status_trust_cas_ = 0;
  uint64_t next_generation_ = 1;
  int64_t next_renewal_unix_ = 0;
  int64_t retry_at_ms_ = 0;
  unsigned failures_in_series_ = 0;
  std::atomic<bool> published_{false};                     // a first generation is in the slots
  std::shared_ptr<const tls::TlsContext> control_client_;  // under mutex_
  int64_t backoff_cap_ms_ = 300000;
  // Renewal jitter and retry backoff draws; seeded per process so that a fleet differs.
  std::mt19937_64 random_{std::random_device{}()};
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }
  bool series_renew_ = false;
  int file_retries_left_ = 0;
  FileWatcher watcher_{"certificate files", tuning_.file_poll, tuning_.debounce};
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> rotate_requested_{false};

  // Read by the admin thread.
  mutable std::mutex mutex_;
  RotationStatus status_;
  std::atomic<uint64_t> rotations_{0};
  std::atomic<uint64_t> rotations_failed_{0};
  std::atomic<size_t> generations_live_{0};
};

RotationAgent::RotationAgent(const Config& config, std::vector<TlsListener> listeners,
                             unsigned workers, WorkerQuiescence quiescence, RotationTuning tuning)
    : impl_(std::make_unique<Impl>(config, std::move(listeners), workers, std::move(quiescence),
                                   tuning)) {}

RotationAgent::~RotationAgent() = default;

Result<void> RotationAgent::initialize(std::string* detail) { return impl_->initialize(detail); }
bool RotationAgent::published() const { return impl_->published(); }
std::shared_ptr<const tls::TlsContext> RotationAgent::control_client_context() const {
  return impl_->control_client_context();
}
Result<void> RotationAgent::start(std::string* detail) { return impl_->start(detail); }
void RotationAgent::stop() { impl_->stop(); }
void RotationAgent::request_rotation() { impl_->request_rotation(); }
AttemptResult RotationAgent::attempt_now(bool renew) { return impl_->attempt_now(renew); }
size_t RotationAgent::collect_now() { return impl_->collect_now(); }
RotationStatus RotationAgent::status() const { return impl_->status(); }
std::string RotationAgent::render_json() const { return impl_->render_json(); }
std::string RotationAgent::render_prometheus() const { return impl_->render_prometheus(); }

}  // namespace ringside::certs
