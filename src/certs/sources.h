// The rotation agent's certificate sources and the small pieces they share (file I/O,
// the renewal schedule, the cfssl HTTP client). Control thread only: everything here may
// block.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringside/config.h"
#include "ringside/result.h"
#include "ringside/tls.h"

namespace ringside::certs {

int64_t unix_now();
std::string iso_time(int64_t unix_seconds);
// "3d4h", "12m5s", "42s", "-7s" (negative for the past): for log lines.
std::string human_seconds(int64_t seconds);

// Reads a whole file. detail: "PATH: reason".
bool read_whole_file(const std::string& path, std::string* out, std::string* detail);
// Replaces path atomically: a temporary file in the same directory with `mode`, fsync,
// rename over path, fsync of the directory. A reader sees the old or the new file.
bool write_file_atomically(const std::string& path, std::string_view data, mode_t mode,
                           std::string* detail);

// The CA certificates of a trust bundle. Every PEM certificate in it must parse and at
// least one must be a CA; otherwise 0 and detail says why (the bundle is then never
// adopted: an empty bundle must not mean "verify nothing").
size_t count_trust_cas(std::string_view bundle_pem, std::string* detail);

// When a certificate obtained at obtained_at should be renewed: renew_after later when
// it came with a full --cert-lifetime or more; otherwise (a remote CA's profile decides,
// or a stored certificate reused on restart) after the same fraction of the validity it
// had left when obtained.
// jitter_percent moves it earlier by a uniformly random part of the last jitter_percent %
// of that interval: u is the caller's uniform draw in [0, 1) (the agent's generator; a
// fixed value in tests and simulations).
int64_t renewal_time(const tls::CertInfo& cert, int64_t obtained_at, Duration lifetime,
                     Duration renew_after, unsigned jitter_percent = 0, double u = 0);

// How long to wait before the next attempt after `failures` consecutive failures (1 for
// the first): full-jitter exponential backoff, a uniform draw (u in [0, 1)) between
// kMinRetryMs and min(cap_ms, base_ms * 2^(failures - 1)); never sooner than the
// retry_after_ms the CA asked for (its Retry-After; 0 when it said nothing).
inline constexpr int64_t kMinRetryMs = 100;
// A Retry-After value in seconds from now (delta-seconds, or an IMF-fixdate HTTP-date
// given now in Unix seconds); -1 when it is neither.
int64_t parse_retry_after(std::string_view value, int64_t now);
int64_t retry_delay_ms(unsigned failures, int64_t base_ms, int64_t cap_ms, double u,
                       int64_t retry_after_ms);

// Where a rotation agent gets its certificate from.
class CertificateSource {
 public:
  virtual ~CertificateSource() = default;
  virtual std::string_view name() const = 0;
  // True: renews on a schedule (issuing sources). False: reacts to file changes.
  virtual bool scheduled() const = 0;
  // The identity to serve now. initial: start-up, where a stored certificate that is
  // still good may be reused. renew: issue a new one even if the current one is good.
  virtual Result<tls::Identity> obtain(bool initial, bool renew, std::string* detail) = 0;
  // Called once the identity obtain() returned is published (issuing sources store it).
  virtual void installed(const tls::Identity& /*identity*/) {}
  // The trust bundle the source implies when --trust is not given (the local CA).
  virtual std::string implied_trust() const { return {}; }
  // Files to watch for changes.
  virtual std::vector<std::string> watched_paths() const { return {}; }
  // After a failed obtain(): how long the CA asked to be left alone (its Retry-After on a
  // 429 or 503), in ms; 0 when it said nothing.
  virtual int64_t retry_after_ms() const { return 0; }
  // From another thread, when the process stops: an obtain() that is waiting between
  // requests (an ACME order being polled) returns soon, failed. Requests in flight still
  // end by their timeout.
  virtual void cancel() {}
};

// --cert/--key: read as a pair on every call.
std::unique_ptr<CertificateSource> make_file_source(std::string cert_path, std::string key_path);

struct IssuingOptions {
  std::string service_name;
  std::string spiffe_id;  // local issuer: a URI SAN next to the DNS SAN; empty: none
  tls::KeyType key_type = tls::KeyType::kEcdsaP256;
  Duration lifetime = std::chrono::hours(24 * 7);
  Duration renew_after = std::chrono::hours(24 * 5);
  std::string cert_dir;  // empty: nothing stored, nothing reused
  // Validates a stored certificate before reuse (local issuer: its CA; remote: --trust).
  std::string reuse_trust_pem;
};

// The issuing sources' shared part: storing what was published in --cert-dir, and reusing
// it on restart.
class IssuingSource : public CertificateSource {
 public:
  explicit IssuingSource(IssuingOptions options) : options_(std::move(options)) {}
  bool scheduled() const override { return true; }
  // Stores key.pem (0600) then cert.pem (0644) in --cert-dir, when there is one.
  void installed(const tls::Identity& identity) override;

 protected:
  // A certificate stored in --cert-dir by an earlier run, if it is valid for this service
  // and not yet due for renewal.
  bool reuse_stored(tls::Identity* out);

  IssuingOptions options_;
};

// --ca-cert/--ca-key: issues leaves itself (the CA files are read on every issue, so they
// may be replaced too).
std::unique_ptr<CertificateSource> make_local_issuer(std::string ca_cert_path,
                                                     std::string ca_key_path,
                                                     IssuingOptions options);

// --ca-url: a CSR to cfssl's /api/v1/cfssl/sign, or /authsign with an auth key. The URL
// may carry ?profile=NAME; an https:// one is verified against trust_path (and the host
// name), optionally presenting a client certificate.
struct RemoteCaOptions {
  std::string url;
  std::chrono::milliseconds timeout{10000};
  std::string trust_path;                         // --ca-trust
  std::string client_cert_path, client_key_path;  // --ca-client-cert, --ca-client-key
  std::string auth_key_path;                      // --ca-auth-key
};
std::unique_ptr<CertificateSource> make_remote_ca(RemoteCaOptions remote, IssuingOptions options);

// A blocking HTTP/1.1 request (Connection: close) over TCP or, for an https URL, TLS with
// tls's context; the response goes through the project's own HTTP/1.1 parser, with the
// strictness any upstream meets. For the remote CA and ACME, off the workers.
struct HttpResponse {
  int status = 0;
  std::string body;
  int64_t retry_after_s = -1;  // Retry-After (delta-seconds or HTTP-date); -1 when absent
  std::vector<std::pair<std::string, std::string>> fields;  // the response's header fields
  // The first field of that name (case-insensitive); empty when absent.
  std::string_view field(std::string_view name) const;
};
struct HttpUrl {
  bool https = false;
  std::string host;
  uint16_t port = 80;  // 443 for https
  std::string path;    // "/..." without the query
  std::string query;   // without '?'
};
bool parse_http_url(std::string_view url, HttpUrl* out, std::string* detail);
struct CaTls {
  std::shared_ptr<const tls::TlsContext> context;  // one WOLFSSL_CTX (index 0)
};
// method "GET" sends no body (content_type and body are ignored).
Result<HttpResponse> http_request(std::string_view method, const HttpUrl& url,
                                  std::string_view content_type, std::string_view body,
                                  const CaTls* tls, std::chrono::milliseconds timeout,
                                  std::string* detail);
inline Result<HttpResponse> http_post(const HttpUrl& url, std::string_view content_type,
                                      std::string_view body, const CaTls* tls,
                                      std::chrono::milliseconds timeout, std::string* detail) {
  return http_request("POST", url, content_type, body, tls, timeout, detail);
}
// A client context for a CA server (one WOLFSSL_CTX): trust_path's CAs, and a client
// certificate when client_cert_path is not empty. why: "--ca-trust PATH: reason", ...
bool make_ca_tls(const std::string& trust_path, const std::string& client_cert_path,
                 const std::string& client_key_path, CaTls* tls, std::string* why);

// cfssl's sign API: the request body, and the certificate from a response (or why not).
std::string cfssl_sign_request(std::string_view csr_pem, std::string_view profile);
// cfssl's authsign body for a sign request: {"token": base64(HMAC-SHA256(key, request)),
// "request": base64(request)}, key being the raw bytes of cfssl's hex auth key.
std::string cfssl_authsign_request(std::string_view request, std::string_view key);
// base64 (RFC 4648 4, padded) or, with url, base64url without padding (RFC 7515 2).
std::string base64_encode(std::string_view bytes, bool url = false);
// Reads cfssl's hex auth key from a file (surrounding whitespace ignored) as raw bytes.
bool read_auth_key(const std::string& path, std::string* key, std::string* detail);
// The response goes through the strict JSON reader (ringside/json.h).
Result<std::string> parse_cfssl_sign_response(std::string_view body, std::string* detail);

}  // namespace ringside::certs
