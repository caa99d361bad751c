#include "certs/acme.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <thread>
#include <utility>

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>

#include "ringside/admin.h"
#include "ringside/certs.h"
#include "ringside/json.h"
#include "ringside/log.h"
#include "tls/pem.h"

namespace ringside::certs {
namespace {

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

Error acme_error() { return make_error(ErrorKind::kProtocol, Side::kUpstream, "acme"); }

}  // namespace

std::string base64url(std::string_view in) { return base64_encode(in, /*url=*/true); }

bool base64_decode(std::string_view text, std::string* out) {
  out->clear();
  uint32_t bits = 0;
  int have = 0;
  size_t pad = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    int v = base64_value(c);
    if (v < 0 || pad != 0) return false;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    have += 6;
    if (have >= 8) {
      have -= 8;
      out->push_back(static_cast<char>((bits >> have) & 0xff));
    }
  }
  return pad <= 2 && have < 6;
}

std::string sha256_bytes(std::string_view bytes) {
  byte digest[WC_SHA256_DIGEST_SIZE] = {};
  wc_Sha256Hash(reinterpret_cast<const byte*>(bytes.data()), static_cast<word32>(bytes.size()),
                digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

bool pem_body_der(std::string_view pem, std::string* der) {
  size_t begin = pem.find("-----BEGIN ");
  if (begin == std::string_view::npos) return false;
  size_t body = pem.find('\n', begin);
  size_t end = pem.find("-----END ", begin);
  if (body == std::string_view::npos || end == std::string_view::npos || end < body) return false;
  return base64_decode(pem.substr(body + 1, end - body - 1), der) && !der->empty();
}

Result<AcmeAccountKey> AcmeAccountKey::from_pem(std::string_view pem, std::string* detail) {
  tls::detail::PrivateKeyDer der;
  if (!tls::detail::decode_private_key(pem, &der, detail)) return acme_error();
  if (der.type != tls::KeyType::kEcdsaP256) {
    *detail = "the ACME account key is not an ECDSA P-256 key";
    return acme_error();
  }
  auto* raw = new ecc_key;
  std::shared_ptr<void> key(raw, [](void* k) {
    wc_ecc_free(static_cast<ecc_key*>(k));
    delete static_cast<ecc_key*>(k);
  });
  word32 idx = 0;
  if (wc_ecc_init(raw) != 0 ||
      wc_EccPrivateKeyDecode(der.der.data(), &idx, raw, static_cast<word32>(der.der.size())) != 0) {
    *detail = "the ACME account key does not decode";
    return acme_error();
  }
  byte x[32], y[32];
  word32 x_len = sizeof(x), y_len = sizeof(y);
  if (wc_ecc_export_public_raw(raw, x, &x_len, y, &y_len) != 0 || x_len != 32 || y_len != 32) {
    *detail = "the ACME account key's public key does not export";
    return acme_error();
  }
  AcmeAccountKey account;
  account.key_ = std::move(key);
  account.jwk_ = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" +
                 base64url(std::string_view(reinterpret_cast<char*>(x), 32)) + "\",\"y\":\"" +
                 base64url(std::string_view(reinterpret_cast<char*>(y), 32)) + "\"}";
  return account;
}

std::string AcmeAccountKey::thumbprint() const { return base64url(sha256_bytes(jwk_)); }

Result<std::string> AcmeAccountKey::sign(std::string_view url, std::string_view nonce,
                                         std::string_view kid, std::string_view payload,
                                         std::string* detail) const {
  std::string header = "{\"alg\":\"ES256\",";
  header += kid.empty() ? "\"jwk\":" + jwk_ : "\"kid\":\"" + json_escape(kid) + "\"";
  header += ",\"nonce\":\"" + json_escape(nonce) + "\",\"url\":\"" + json_escape(url) + "\"}";
  auto der = sign_der(base64url(header) + "." + base64url(payload), detail);
  if (!der.ok()) return der;
  byte r[32], s[32];
  word32 r_len = sizeof(r), s_len = sizeof(s);
  if (wc_ecc_sig_to_rs(reinterpret_cast<const byte*>(der->data()), static_cast<word32>(der->size()),
                       r, &r_len, s, &s_len) != 0) {
    *detail = "JWS: the ES256 signature does not decode";
    return acme_error();
  }
  // r and s as fixed 32-byte big-endian integers.
  std::string signature(64, '\0');
  std::copy(r, r + r_len, reinterpret_cast<byte*>(signature.data()) + 32 - r_len);
  std::copy(s, s + s_len, reinterpret_cast<byte*>(signature.data()) + 64 - s_len);
  return "{\"protected\":\"" + base64url(header) + "\",\"payload\":\"" + base64url(payload) +
         "\",\"signature\":\"" + base64url(signature) + "\"}";
}

Result<std::string> AcmeAccountKey::sign_der(std::string_view data, std::string* detail) const {
  std::string digest = sha256_bytes(data);
  WC_RNG rng;
  if (wc_InitRng(&rng) != 0) {
    *detail = "no random generator";
    return acme_error();
  }
  byte der[80];
  word32 der_len = sizeof(der);
  int ret = wc_ecc_sign_hash(reinterpret_cast<const byte*>(digest.data()),
                             static_cast<word32>(digest.size()), der, &der_len, &rng,
                             static_cast<ecc_key*>(key_.get()));
  wc_FreeRng(&rng);
  if (ret != 0) {
    *detail = "ECDSA signing failed";
    return acme_error();
  }
  return std::string(reinterpret_cast<const char*>(der), der_len);
}

std::string AcmeAccountKey::public_key_der() const {
  byte der[128];
  int n = wc_EccPublicKeyToDer(static_cast<ecc_key*>(key_.get()), der, sizeof(der), 1);
  return n > 0 ? std::string(reinterpret_cast<const char*>(der), static_cast<size_t>(n))
               : std::string();
}

namespace {

// DER: tag, definite length, content.
std::string der(uint8_t tag, std::string_view content) {
  std::string out(1, static_cast<char>(tag));
  size_t n = content.size();
  if (n < 0x80) {
    out += static_cast<char>(n);
  } else {
    std::string length;
    for (; n != 0; n >>= 8) length.insert(length.begin(), static_cast<char>(n & 0xff));
    out += static_cast<char>(0x80 | length.size());
    out += length;
  }
  out.append(content);
  return out;
}

// UTCTime (YYMMDDHHMMSSZ) from iso_time's "YYYY-MM-DDTHH:MM:SSZ".
std::string utc_time(int64_t unix_seconds) {
  std::string iso = iso_time(unix_seconds), out;
  for (char c : iso.substr(2)) {
    if (c != '-' && c != ':' && c != 'T') out += c;
  }
  return der(0x17, out);
}

}  // namespace

Result<std::string> acme_tls_alpn_certificate(const AcmeAccountKey& key, std::string_view name,
                                              std::string_view key_authorization,
                                              std::string* detail) {
  static constexpr char kEcdsaSha256[] = "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02";
  static constexpr char kCommonName[] = "\x06\x03\x55\x04\x03";
  static constexpr char kSubjectAltName[] = "\x06\x03\x55\x1d\x11";
  static constexpr char kAcmeIdentifier[] = "\x06\x08\x2b\x06\x01\x05\x05\x07\x01\x1f";
  const std::string algorithm = der(0x30, std::string_view(kEcdsaSha256, 10));
  const std::string subject =
      der(0x30, der(0x31, der(0x30, std::string(kCommonName, 5) + der(0x0c, name))));
  std::string serial(16, '\0');
  WC_RNG rng;
  if (wc_InitRng(&rng) != 0 ||
      wc_RNG_GenerateBlock(&rng, reinterpret_cast<byte*>(serial.data()), 16) != 0) {
    *detail = "no random generator";
    return acme_error();
  }
  wc_FreeRng(&rng);
  serial[0] = static_cast<char>((serial[0] & 0x7f) | 0x40);  // positive, 16 bytes
  const int64_t now = unix_now();
  const std::string spki = key.public_key_der();
  if (spki.empty()) {
    *detail = "the public key does not encode";
    return acme_error();
  }
  const std::string extensions = der(
      0xa3,
      der(0x30, der(0x30, std::string(kSubjectAltName, 5) + der(0x04, der(0x30, der(0x82, name)))) +
                    der(0x30, std::string(kAcmeIdentifier, 10) + der(0x01, "\xff") +
                                  der(0x04, der(0x04, sha256_bytes(key_authorization))))));
  const std::string tbs =
      der(0x30, der(0xa0, der(0x02, "\x02")) + der(0x02, serial) + algorithm + subject +
                    der(0x30, utc_time(now - 3600) + utc_time(now + 7 * 86400)) + subject + spki +
                    extensions);
  auto signature = key.sign_der(tbs, detail);
  if (!signature.ok()) return signature;
  const std::string certificate =
      der(0x30, tbs + algorithm + der(0x03, std::string(1, '\0') + *signature));
  return tls::detail::der_to_pem(reinterpret_cast<const uint8_t*>(certificate.data()),
                                 certificate.size(), CERT_TYPE);
}

std::string acme_key_authorization(std::string_view token, std::string_view thumbprint) {
  return std::string(token) + "." + std::string(thumbprint);
}

void AcmeChallenges::set_http01(const std::string& token, const std::string& key_authorization) {
  std::lock_guard<std::mutex> lock(mutex_);
  http01_[token] = key_authorization;
}

std::string AcmeChallenges::http01(const std::string& token) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = http01_.find(token);
  return it == http01_.end() ? std::string() : it->second;
}

void AcmeChallenges::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  http01_.clear();
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxRetryAfterS = 3600;
constexpr std::string_view kChallengePath = "/.well-known/acme-challenge/";

// One certificate's exchange with the ACME server: directory, nonces, account, order.
class AcmeExchange {
 public:
  AcmeExchange(const AcmeOptions& options, const AcmeAccountKey& key, std::string* account_url,
               std::string* why, int64_t* retry_after_ms, const std::atomic<bool>& cancelled)
      : cancelled_(cancelled),
        options_(options),
        key_(key),
        account_url_(account_url),
        why_(why),
        retry_after_ms_(retry_after_ms),
        deadline_(Clock::now() + options.order_timeout) {}

  bool start() {
    if (!parse_http_url(options_.directory_url, &directory_, why_)) {
      *why_ = "--acme-directory: " + *why_;
      return false;
    }
    if (!make_ca_tls(options_.trust_path, "", "", &tls_, why_)) return false;
    HttpResponse response;
    JsonValue directory;
    if (!request("GET", options_.directory_url, "", &response) ||
        !json_answer(response, "directory", &directory)) {
      return false;
    }
    new_nonce_ = directory.string_at("newNonce");
    new_account_ = directory.string_at("newAccount");
    new_order_ = directory.string_at("newOrder");
    if (new_nonce_.empty() || new_account_.empty() || new_order_.empty()) {
      return bad("the directory lacks newNonce, newAccount or newOrder");
    }
    if (!request("GET", new_nonce_, "", &response)) return false;
    nonce_ = std::string(response.field("replay-nonce"));
    if (nonce_.empty()) return bad("newNonce answered without a Replay-Nonce");
    if (account_url_->empty()) {
      JsonValue account;
      if (!post(new_account_, "{\"termsOfServiceAgreed\":true}", &response, /*jwk=*/true) ||
          !json_answer(response, "account", &account)) {
        return false;
      }
      *account_url_ = std::string(response.field("location"));
      if (account_url_->empty()) return bad("newAccount answered without a Location");
      RS_INFO("acme: account %s", account_url_->c_str());
    }
    return true;
  }

  // A new order for name; *order is its document, *order_url its URL.
  bool new_order(const std::string& name, JsonValue* order, std::string* order_url) {
    HttpResponse response;
    std::string payload =
        "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"" + json_escape(name) + "\"}]}";
    if (!post(new_order_, payload, &response) || !json_answer(response, "order", order)) {
      return false;
    }
    *order_url = std::string(response.field("location"));
    if (order_url->empty()) return bad("newOrder answered without a Location");
    return true;
  }

  // POST-as-GET of url, parsed as JSON.
  bool fetch(const std::string& url, std::string_view what, JsonValue* out,
             HttpResponse* response) {
    return post(url, "", response) && json_answer(*response, what, out);
  }
  bool post_json(const std::string& url, std::string_view payload, std::string_view what,
                 JsonValue* out, HttpResponse* response) {
    return post(url, payload, response) && json_answer(*response, what, out);
  }

  // Polls url (POST-as-GET) until its status is none of `waiting`: at the server's
  // Retry-After when it gives one, else every 500 ms, within the order's deadline.
  bool poll(const std::string& url, std::string_view what,
            std::initializer_list<std::string_view> waiting, JsonValue* out) {
    for (;;) {
      HttpResponse response;
      if (!fetch(url, what, out, &response)) return false;
      std::string_view status = out->string_at("status");
      if (std::find(waiting.begin(), waiting.end(), status) == waiting.end()) return true;
      auto pause = std::chrono::milliseconds(500);
      if (response.retry_after_s >= 0) {
        pause = std::chrono::seconds(std::min<int64_t>(response.retry_after_s, kMaxRetryAfterS));
      }
      if (Clock::now() + pause > deadline_) {
        // Asked to come back later than this attempt may wait: the agent retries then.
        if (response.retry_after_s >= 0) *retry_after_ms_ = pause.count();
        return bad(std::string(what) + " still " + std::string(status) + " after " +
                   std::to_string(options_.order_timeout.count() / 1000) + " s" +
                   (response.retry_after_s >= 0
                        ? " (Retry-After: " + std::to_string(response.retry_after_s) + " s)"
                        : ""));
      }
      for (auto until = Clock::now() + pause; Clock::now() < until;) {
        if (cancelled_.load(std::memory_order_acquire)) return bad("stopping");
        std::this_thread::sleep_for(
            std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
      }
    }
  }

  // The certificate chain at url (PEM).
  bool download(const std::string& url, std::string* chain) {
    HttpResponse response;
    if (!post(url, "", &response)) return false;
    if (response.status != 200 ||
        response.body.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return bad("the certificate download answered " + std::to_string(response.status) +
                 " without a PEM chain");
    }
    *chain = std::move(response.body);
    return true;
  }

  bool bad(std::string why) {
    *why_ = std::move(why);
    return false;
  }

 private:
  bool request(std::string_view method, const std::string& url, std::string_view body,
               HttpResponse* out) {
    HttpUrl parsed;
    if (!parse_http_url(url, &parsed, why_)) return bad("ACME URL '" + url + "': " + *why_);
    if (!parsed.https) return bad("ACME URL '" + url + "' is not https");
    auto response =
        http_request(method, parsed, "application/jose+json", body, &tls_, options_.timeout, why_);
    if (!response.ok())
      return bad("ACME server " + parsed.host + ":" + std::to_string(parsed.port) + ": " + *why_);
    *out = std::move(*response);
    return true;
  }

  // A JWS POST (kid, or jwk for newAccount) with the current nonce; a badNonce answer is
  // retried with the fresh nonce it carries (RFC 8555 6.5), a few times.
  bool post(const std::string& url, std::string_view payload, HttpResponse* response,
            bool jwk = false) {
    for (int attempt = 0;; ++attempt) {
      auto jws = key_.sign(url, nonce_, jwk ? "" : *account_url_, payload, why_);
      if (!jws.ok()) return false;
      if (!request("POST", url, *jws, response)) return false;
      nonce_ = std::string(response->field("replay-nonce"));
      if (response->status < 400) return true;
      std::string type;
      std::string problem = describe_problem(*response, &type);
      if (type == "urn:ietf:params:acme:error:badNonce" && attempt < 3 && !nonce_.empty()) {
        continue;
      }
      if (type == "urn:ietf:params:acme:error:rateLimited" || response->status == 429 ||
          response->status == 503) {
        if (response->retry_after_s >= 0) {
          *retry_after_ms_ = std::min<int64_t>(response->retry_after_s, kMaxRetryAfterS) * 1000;
          problem += " (Retry-After: " + std::to_string(response->retry_after_s) + " s)";
        }
      }
      return bad(problem);
    }
  }

  // "ACME server answered 403 urn:ietf:params:acme:error:...: DETAIL".
  static std::string describe_problem(const HttpResponse& response, std::string* type) {
    std::string text = "ACME server answered " + std::to_string(response.status);
    std::string why;
    auto problem = parse_json(response.body, &why);
    if (!problem.ok() || !problem->is_object()) return text + " (" + why + ")";
    *type = std::string(problem->string_at("type"));
    return text + " " + *type + ": " + std::string(problem->string_at("detail"));
  }

  bool json_answer(const HttpResponse& response, std::string_view what, JsonValue* out) {
    if (response.status < 200 || response.status > 299) {
      std::string type;
      return bad(describe_problem(response, &type));
    }
    auto value = parse_json(response.body, why_);
    if (!value.ok()) return bad("ACME " + std::string(what) + ": " + *why_);
    if (!value->is_object()) return bad("ACME " + std::string(what) + ": not a JSON object");
    *out = std::move(*value);
    return true;
  }

  const std::atomic<bool>& cancelled_;
  const AcmeOptions& options_;
  const AcmeAccountKey& key_;
  std::string* account_url_;
  std::string* why_;
  int64_t* retry_after_ms_;
  Clock::time_point deadline_;
  HttpUrl directory_;
  CaTls tls_;
  std::string new_nonce_, new_account_, new_order_, nonce_;
};

class AcmeSource final : public IssuingSource {
 public:
  AcmeSource(AcmeOptions acme, IssuingOptions options)
      : IssuingSource(std::move(options)), acme_(std::move(acme)) {}
  std::string_view name() const override { return "acme"; }
  int64_t retry_after_ms() const override { return retry_after_ms_; }
  void cancel() override { cancelled_.store(true, std::memory_order_release); }

  Result<tls::Identity> obtain(bool initial, bool renew, std::string* detail) override {
    tls::Identity reused;
    if (initial && !renew && reuse_stored(&reused)) return reused;
    retry_after_ms_ = 0;
    if (std::exchange(first_call_, false) && challenge_type() == "tls-alpn-01") {
      // Called at start-up before the listeners serve: they are what answers.
      *detail =
          "acme: the first certificate is ordered through tls-alpn-01 once the ingress "
          "listeners run";
      return acme_error();
    }
    std::string why;
    bool ok = issue(&reused, &why);
    challenges_.clear();
    tls::set_acme_tls_alpn_challenge(nullptr);
    if (!ok) {
      *detail = "acme: " + why;
      return acme_error();
    }
    return reused;
  }

 private:
  bool ensure_account_key(std::string* why) {
    if (account_key_) return true;
    const std::string path = options_.cert_dir + "/acme-account-key.pem";
    std::string pem;
    if (!read_whole_file(path, &pem, why)) {
      auto key = generate_key(tls::KeyType::kEcdsaP256, why);
      if (!key.ok()) return false;
      if (!write_file_atomically(path, *key, 0600, why)) return false;
      RS_INFO("acme: created the account key %s", path.c_str());
      pem = std::move(*key);
    }
    auto key = AcmeAccountKey::from_pem(pem, why);
    if (!key.ok()) {
      *why = path + ": " + *why;
      return false;
    }
    account_key_ = std::make_unique<AcmeAccountKey>(std::move(*key));
    return true;
  }

  bool start_http_responder(std::string* why) {
    if (acme_.http_address.empty() || http_server_) return true;
    auto address = SocketAddress::parse_numeric(acme_.http_address);
    if (!address.ok()) {
      *why = "--acme-http-port '" + acme_.http_address + "': not ADDRESS:PORT";
      return false;
    }
    auto server = AdminServer::start(*address, why);
    if (!server.ok()) {
      *why = "--acme-http-port " + acme_.http_address + ": " + *why;
      return false;
    }
    http_server_ = std::move(*server);
    RS_INFO("acme: answering http-01 challenges on %s", acme_.http_address.c_str());
    return true;
  }

  // The challenge this sidecar answers: http-01 when it has a plaintext port.
  std::string_view challenge_type() const {
    return acme_.http_address.empty() ? "tls-alpn-01" : "http-01";
  }

  bool answer(AcmeExchange& exchange, const std::string& authz_url, std::string* why) {
    JsonValue authz;
    HttpResponse response;
    if (!exchange.fetch(authz_url, "authorization", &authz, &response)) return false;
    if (authz.string_at("status") == "valid") return true;
    const JsonValue* challenges = authz.find("challenges");
    const JsonValue* chosen = nullptr;
    if (challenges != nullptr && challenges->is_array()) {
      for (const JsonValue& challenge : challenges->items()) {
        if (challenge.string_at("type") == challenge_type()) chosen = &challenge;
      }
    }
    if (chosen == nullptr) {
      return exchange.bad("the authorization offers no " + std::string(challenge_type()) +
                          " challenge");
    }
    std::string token(chosen->string_at("token"));
    std::string url(chosen->string_at("url"));
    if (token.empty() || url.empty() ||
        token.find_first_not_of(
            std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")) !=
            std::string::npos) {
      return exchange.bad("the challenge has no valid token or url");
    }
    const std::string key_authorization = acme_key_authorization(token, account_key_->thumbprint());
    if (challenge_type() == "tls-alpn-01") {
      // Answered by the ingress listeners' TLS sessions, with a key of its own.
      auto pem = generate_key(tls::KeyType::kEcdsaP256, why);
      if (!pem.ok()) return false;
      auto key = AcmeAccountKey::from_pem(*pem, why);
      if (!key.ok()) return false;
      auto cert = acme_tls_alpn_certificate(*key, options_.service_name, key_authorization, why);
      if (!cert.ok()) return false;
      auto challenge = std::make_shared<tls::AcmeTlsAlpnChallenge>(
          tls::AcmeTlsAlpnChallenge{options_.service_name, std::move(*cert), std::move(*pem), {}});
      // The context's own identity is a placeholder: every session of it swaps the
      // challenge certificate in once the ClientHello asked for it (tls.cc), and one that
      // did not ask fails. (Its critical acmeIdentifier extension, unknown to wolfSSL's
      // certificate parser, would not pass TlsContext::create's checks.)
      CaOptions placeholder_options;
      placeholder_options.common_name = options_.service_name;
      placeholder_options.lifetime = std::chrono::hours(24);
      auto placeholder = create_ca(placeholder_options, why);
      if (!placeholder.ok()) return exchange.bad("tls-alpn-01 context: " + *why);
      auto context =
          tls::TlsContext::create(tls::ContextOptions{}, &*placeholder, acme_.workers, why);
      if (!context.ok()) return exchange.bad("tls-alpn-01 context: " + *why);
      challenge->context = std::move(*context);
      tls::set_acme_tls_alpn_challenge(std::move(challenge));
    } else {
      challenges_.set_http01(token, key_authorization);
      const std::string path = std::string(kChallengePath) + token;
      http_server_->route(
          "GET", path, [this, token](const std::string&, const std::string&, const std::string&) {
            AdminResponse out;
            out.content_type = "application/octet-stream";
            out.body = challenges_.http01(token);
            if (out.body.empty()) out.status = 404;
            return out;
          });
    }
    JsonValue ignored;
    if (!exchange.post_json(url, "{}", "challenge", &ignored, &response)) return false;
    if (!exchange.poll(authz_url, "authorization", {"pending"}, &authz)) return false;
    if (authz.string_at("status") == "valid") return true;
    // Why the challenge failed, in the server's words.
    std::string reason = "the " + std::string(challenge_type()) + " challenge failed";
    if (const JsonValue* list = authz.find("challenges"); list != nullptr) {
      for (const JsonValue& challenge : list->items()) {
        const JsonValue* error = challenge.find("error");
        if (error != nullptr && challenge.string_at("type") == challenge_type()) {
          reason += ": " + std::string(error->string_at("type")) + ": " +
                    std::string(error->string_at("detail"));
        }
      }
    }
    return exchange.bad("authorization " + std::string(authz.string_at("status")) + ", " + reason);
  }

  bool issue(tls::Identity* out, std::string* why) {
    if (!ensure_account_key(why) || !start_http_responder(why)) return false;
    AcmeExchange exchange(acme_, *account_key_, &account_url_, why, &retry_after_ms_, cancelled_);
    if (!exchange.start()) {
      // An account URL that the server no longer knows is looked up again next time.
      if (why->find("accountDoesNotExist") != std::string::npos) account_url_.clear();
      return false;
    }
    JsonValue order;
    std::string order_url;
    if (!exchange.new_order(options_.service_name, &order, &order_url)) {
      if (why->find("accountDoesNotExist") != std::string::npos) account_url_.clear();
      return false;
    }
    const JsonValue* authorizations = order.find("authorizations");
    if (authorizations == nullptr || !authorizations->is_array()) {
      return exchange.bad("the order has no authorizations");
    }
    for (const JsonValue& authz : authorizations->items()) {
      if (!authz.is_string()) return exchange.bad("an authorization URL is not a string");
      if (!answer(exchange, authz.string(), why)) return false;
    }
    if (!exchange.poll(order_url, "order", {"pending"}, &order)) return false;
    if (order.string_at("status") != "ready") {
      return exchange.bad("the order is " + std::string(order.string_at("status")) +
                          ", not ready, after its authorizations");
    }
    auto key = generate_key(options_.key_type, why);
    if (!key.ok()) return false;
    auto csr = create_csr(*key, {options_.service_name}, why);
    if (!csr.ok()) return false;
    std::string csr_der;
    if (!pem_body_der(*csr, &csr_der)) return exchange.bad("the CSR is not PEM");
    HttpResponse response;
    std::string finalize(order.string_at("finalize"));
    if (finalize.empty()) return exchange.bad("the order has no finalize URL");
    if (!exchange.post_json(finalize, "{\"csr\":\"" + base64url(csr_der) + "\"}", "order", &order,
                            &response) ||
        !exchange.poll(order_url, "order", {"ready", "processing"}, &order)) {
      return false;
    }
    std::string certificate(order.string_at("certificate"));
    if (order.string_at("status") != "valid" || certificate.empty()) {
      return exchange.bad("the order is " + std::string(order.string_at("status")) +
                          " after finalization, without a certificate");
    }
    if (!exchange.download(certificate, &out->cert_chain_pem)) return false;
    // Some ACME CAs (pebble) do not backdate not_before: a certificate valid from this very
    // second would be refused as not yet valid. Up to a minute early is waited out.
    if (auto leaf = tls::inspect_certificate(out->cert_chain_pem, why); leaf.ok()) {
      int64_t early = leaf->not_before - unix_now();
      if (early >= 0 && early <= 60) {
        std::this_thread::sleep_until(
            std::chrono::system_clock::time_point(std::chrono::seconds(leaf->not_before + 1)));
      }
    }
    out->key_pem = std::move(*key);
    return true;
  }

  AcmeOptions acme_;
  bool first_call_ = true;
  std::atomic<bool> cancelled_{false};
  std::unique_ptr<AcmeAccountKey> account_key_;
  std::string account_url_;
  int64_t retry_after_ms_ = 0;
  AcmeChallenges challenges_;
  std::unique_ptr<AdminServer> http_server_;
};

}  // namespace

std::unique_ptr<CertificateSource> make_acme_source(AcmeOptions acme, IssuingOptions options) {
  return std::make_unique<AcmeSource>(std::move(acme), std::move(options));
}

}  // namespace ringside::certs
