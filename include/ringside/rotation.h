// The rotation agent: keeps every TLS listener's certificate and trust bundle current
// and swaps them into the running workers without a lock on the data path.
//
// It runs on a thread of its own ("rot"), not on the main thread's 200 ms signal loop:
// a rotation then starts within milliseconds of an inotify event or POST /rotate, and a
// blocking call to a remote CA never delays signal handling or draining. Everything it
// does is off the data path: read and validate material, build one TlsContext per
// listener (one WOLFSSL_CTX per worker inside), publish each with one release store, and
// reclaim replaced generations through a GenerationReclaimer (see tls_generation.h).
//
// Sources (exactly one, chosen by the configuration; see docs/rotation.md):
//   files        --cert/--key: the directories are watched with inotify (atomic renames
//                and Kubernetes ..data symlink swaps), plus a 1 s stat() fallback;
//                changes are debounced; cert and key are always loaded as a pair.
//   local issuer --ca-cert/--ca-key[/--cert-dir]: issues its own leaf for
//                --service-name, stores it atomically, renews on schedule.
//   remote CA    --ca-url: sends a CSR to a cfssl server and installs the result.
// --trust, when given, is watched in every mode; a bundle is adopted only when every
// certificate in it parses and at least one is a CA.
//
// Nothing is published that fails validation (key matches, within validity, SAN covers
// --service-name, chains to the trust bundle); a failure keeps the current material,
// counts in rotations_failed, is logged with its reason and retried (with exponential
// backoff for the issuing sources). The same material pushed again is a no-op.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/config.h"
#include "ringside/result.h"
#include "ringside/tls.h"
#include "ringside/tls_generation.h"

namespace ringside::certs {

// A listener whose TLS contexts the agent maintains.
struct TlsListener {
  std::string name;  // for /certs and logs
  ListenerKind kind = ListenerKind::kIngress;
  tls::ClientCertMode client_cert = tls::ClientCertMode::kNone;  // ingress only
  ContextSlot* slot = nullptr;                                   // where to publish
  std::vector<std::string> alpn;  // ALPN ids accepted (ingress) or offered (egress)
  bool no_tickets = false;        // ingress: tls::ContextOptions::no_tickets
};

// Knobs that tests shorten; the defaults are the product's.
struct RotationTuning {
  // Quiet time after the last inotify event before files are read.
  std::chrono::milliseconds debounce{150};
  // stat() fallback for changes inotify cannot see (a symlink target elsewhere).
  std::chrono::milliseconds file_poll{1000};
  // A file pair that does not validate is read again this often, this many times (a
  // writer may be half-way through), before the failure is counted.
  std::chrono::milliseconds file_retry{250};
  int file_retries = 3;
  // How often retired generations are checked while some are pending.
  std::chrono::milliseconds reclaim_interval{50};
  // Remote CA request timeout (connect + request + response).
  std::chrono::milliseconds ca_timeout{10000};
};

// What /certs and tests see. A copy, taken under the agent's lock.
struct RotationStatus {
  std::string source;  // "files" | "local-issuer" | "remote-ca" | "none"
  uint64_t generation = 0;
  bool has_certificate = false;
  tls::CertInfo cert;
  size_t trust_cas = 0;
  int64_t next_renewal = 0;  // Unix seconds; 0: none scheduled (files, none)
  uint64_t rotations = 0;    // generations published after the first
  uint64_t rotations_failed = 0;
  uint64_t consecutive_failures = 0;
  std::string last_error;  // empty when the last attempt succeeded or none failed yet
  int64_t last_error_time = 0;
  size_t generations_live = 0;  // the current one plus retired ones not yet freed
  std::vector<std::pair<std::string, uint64_t>> listeners;  // name, current generation
};

// The outcome of one attempt (tests drive attempts synchronously).
enum class AttemptResult : uint8_t { kPublished, kUnchanged, kFailed };

class RotationAgent {
 public:
  // listeners: the TLS listeners and their (empty) slots. workers: the number of
  // WOLFSSL_CTX per context and of per-worker counts; quiescence: how to read them.
  RotationAgent(const Config& config, std::vector<TlsListener> listeners, unsigned workers,
                WorkerQuiescence quiescence, RotationTuning tuning = {});
  // Stops the thread; frees every generation (call only once the workers are stopped).
  ~RotationAgent();
  RotationAgent(const RotationAgent&) = delete;
  RotationAgent& operator=(const RotationAgent&) = delete;

  // Start-up, on the calling thread: obtains, validates and publishes generation 1 into
  // every slot. On failure nothing is published and detail is one line.
  // A remote CA (--ca-url) that does not answer is no failure: nothing is published,
  // published() stays false, and the thread retries until the CA answers.
  Result<void> initialize(std::string* detail);
  // Whether a first generation is published (thread-safe): false only while a remote CA
  // has not answered since start-up.
  bool published() const;
  // A client context (one WOLFSSL_CTX, index 0) with the current trust bundle and
  // certificate, for TLS from the control threads (health checks of egress services);
  // null before the first publication or without an egress listener. Thread-safe; the
  // pointer keeps its context alive however many rotations follow.
  std::shared_ptr<const tls::TlsContext> control_client_context() const;

  // Starts the "rot" thread (after initialize()), and stops and joins it.
  Result<void> start(std::string* detail);
  void stop();

  // Thread-safe: renew now (issuing sources) or reload (files). Returns immediately; the
  // agent thread does the work.
  void request_rotation();

  // Without the thread (tests): one attempt now, as POST /rotate (renew = true) or as a
  // file change (renew = false); and one reclamation pass.
  AttemptResult attempt_now(bool renew);
  size_t collect_now();

  // Thread-safe views.
  RotationStatus status() const;
  std::string render_json() const;        // GET /certs
  std::string render_prometheus() const;  // appended to GET /stats

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringside::certs
