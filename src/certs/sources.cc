#include "certs/sources.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>

// clang-format off
#include <wolfssl/options.h>
// clang-format on
#include <wolfssl/wolfcrypt/hmac.h>

#include "net/blocking_client.h"
#include "ringside/certs.h"
#include "ringside/http.h"
#include "ringside/json.h"
#include "ringside/log.h"

namespace ringside::certs {
namespace {

Error source_error(std::string_view what) {
  return make_error(ErrorKind::kConfig, Side::kInternal, what);
}

Result<tls::Identity> fail(std::string* detail, std::string why) {
  *detail = std::move(why);
  return source_error("certificate source");
}

std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::chrono::seconds whole_seconds(Duration d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d + std::chrono::milliseconds(999));
  return s.count() < 1 ? std::chrono::seconds(1) : s;
}

// ---- files ----------------------------------------------------------------------------

class FileSource final : public CertificateSource {
 public:
  FileSource(std::string cert, std::string key) : cert_(std::move(cert)), key_(std::move(key)) {}
  std::string_view name() const override { return "files"; }
  bool scheduled() const override { return false; }
  Result<tls::Identity> obtain(bool, bool, std::string* detail) override {
    tls::Identity identity;
    std::string why;
    if (!read_whole_file(cert_, &identity.cert_chain_pem, &why))
      return fail(detail, "--cert " + why);
    if (!read_whole_file(key_, &identity.key_pem, &why)) return fail(detail, "--key " + why);
    return identity;
  }
  std::vector<std::string> watched_paths() const override { return {cert_, key_}; }

 private:
  std::string cert_, key_;
};

// ---- local issuer -----------------------------------------------------------------------

class LocalIssuer final : public IssuingSource {
 public:
  LocalIssuer(std::string ca_cert, std::string ca_key, IssuingOptions options)
      : IssuingSource(std::move(options)),
        ca_cert_(std::move(ca_cert)),
        ca_key_(std::move(ca_key)) {
    std::string why;
    if (read_whole_file(ca_cert_, &ca_pem_, &why)) options_.reuse_trust_pem = ca_pem_;
  }
  std::string_view name() const override { return "local-issuer"; }
  std::string implied_trust() const override { return ca_pem_; }

  Result<tls::Identity> obtain(bool initial, bool renew, std::string* detail) override {
    tls::Identity ca;
    std::string why;
    if (!read_whole_file(ca_cert_, &ca.cert_chain_pem, &why))
      return fail(detail, "--ca-cert " + why);
    if (!read_whole_file(ca_key_, &ca.key_pem, &why)) return fail(detail, "--ca-key " + why);
    ca_pem_ = ca.cert_chain_pem;
    options_.reuse_trust_pem = ca_pem_;
    tls::Identity reused;
    if (initial && !renew && reuse_stored(&reused)) return reused;
    auto key = generate_key(options_.key_type, &why);
    if (!key.ok()) return fail(detail, "key generation: " + why);
    LeafOptions leaf;
    leaf.dns_sans = {options_.service_name};
    if (!options_.spiffe_id.empty()) leaf.uri_sans = {options_.spiffe_id};
    leaf.key_type = options_.key_type;
    leaf.key_pem = std::move(*key);
    leaf.lifetime = whole_seconds(options_.lifetime);
    auto issued = issue_leaf(ca, leaf, &why);
    if (!issued.ok()) return fail(detail, "issuing: " + why);
    return issued;
  }

 private:
  std::string ca_cert_, ca_key_;
  std::string ca_pem_;
};

// ---- remote CA (cfssl) ------------------------------------------------------------------

class RemoteCa final : public IssuingSource {
 public:
  RemoteCa(RemoteCaOptions remote, IssuingOptions options)
      : IssuingSource(std::move(options)), remote_(std::move(remote)) {}
  std::string_view name() const override { return "remote-ca"; }

  Result<tls::Identity> obtain(bool initial, bool renew, std::string* detail) override {
    tls::Identity reused;
    if (initial && !renew && reuse_stored(&reused)) return reused;
    HttpUrl url;
    std::string why;
    if (!parse_http_url(remote_.url, &url, &why)) return fail(detail, "--ca-url: " + why);
    std::string profile;
    for (size_t at = 0; at < url.query.size();) {
      size_t end = url.query.find('&', at);
      if (end == std::string::npos) end = url.query.size();
      std::string_view pair(url.query.data() + at, end - at);
      if (pair.rfind("profile=", 0) == 0) profile = std::string(pair.substr(8));
      at = end + 1;
    }
    url.query.clear();  // read here, not sent
    // cfssl's sign endpoint, or authsign (an HMAC of the request) with --ca-auth-key.
    const bool auth = !remote_.auth_key_path.empty();
    const std::string_view endpoint = auth ? "/authsign" : "/sign";
    std::string_view path = url.path;
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (path.size() < endpoint.size() || path.substr(path.size() - endpoint.size()) != endpoint) {
      url.path = std::string(path) + "/api/v1/cfssl" + std::string(endpoint);
    }
    // The files are read on every request, so that they may be rotated too.
    std::string auth_key;
    if (auth && !read_auth_key(remote_.auth_key_path, &auth_key, &why)) {
      return fail(detail, "--ca-auth-key " + why);
    }
    CaTls tls;
    if (url.https && !make_ca_tls(remote_.trust_path, remote_.client_cert_path,
                                  remote_.client_key_path, &tls, &why)) {
      return fail(detail, why);
    }

    auto key = generate_key(options_.key_type, &why);
    if (!key.ok()) return fail(detail, "key generation: " + why);
    auto csr = create_csr(*key, {options_.service_name}, &why);
    if (!csr.ok()) return fail(detail, "CSR: " + why);
    std::string request = cfssl_sign_request(*csr, profile);
    if (auth) request = cfssl_authsign_request(request, auth_key);
    retry_after_ms_ = 0;
    auto response = http_post(url, "application/json", request, url.https ? &tls : nullptr,
                              remote_.timeout, &why);
    std::string where = url.host + ":" + std::to_string(url.port) + url.path;
    if (!response.ok()) return fail(detail, "CA " + where + ": " + why);
    if ((response->status == 429 || response->status == 503) && response->retry_after_s >= 0) {
      // Respected, up to an hour: a CA cannot make a sidecar wait out its certificate.
      retry_after_ms_ = std::min<int64_t>(response->retry_after_s, kMaxRetryAfterS) * 1000;
      return fail(detail, "CA " + where + " answered " + std::to_string(response->status) +
                              " with Retry-After: " + std::to_string(response->retry_after_s) +
                              " s");
    }
    auto cert = parse_cfssl_sign_response(response->body, &why);
    if (!cert.ok()) {
      return fail(detail,
                  "CA " + where + " answered " + std::to_string(response->status) + ": " + why);
    }
    tls::Identity identity;
    identity.cert_chain_pem = std::move(*cert);
    identity.key_pem = std::move(*key);
    return identity;
  }

  int64_t retry_after_ms() const override { return retry_after_ms_; }

 private:
  static constexpr int64_t kMaxRetryAfterS = 3600;

  RemoteCaOptions remote_;
  int64_t retry_after_ms_ = 0;
};

// ---- HTTP -------------------------------------------------------------------------------

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ---- the issuing sources' shared part ---------------------------------------------------

void IssuingSource::installed(const tls::Identity& identity) {
  if (options_.cert_dir.empty()) return;
  std::string why;
  // The key first: a reader that finds the new certificate also finds its key.
  if (!write_file_atomically(options_.cert_dir + "/key.pem", identity.key_pem, 0600, &why) ||
      !write_file_atomically(options_.cert_dir + "/cert.pem", identity.cert_chain_pem, 0644,
                             &why)) {
    RS_ERROR(
        "%s: cannot store the certificate in --cert-dir (it is served anyway, but a "
        "restart will issue a new one): %s",
        std::string(name()).c_str(), why.c_str());
  }
}

bool IssuingSource::reuse_stored(tls::Identity* out) {
  if (options_.cert_dir.empty()) return false;
  tls::Identity stored;
  std::string why;
  if (!read_whole_file(options_.cert_dir + "/cert.pem", &stored.cert_chain_pem, &why) ||
      !read_whole_file(options_.cert_dir + "/key.pem", &stored.key_pem, &why)) {
    return false;
  }
  int64_t now = unix_now();
  auto info =
      tls::validate_identity(stored, options_.reuse_trust_pem, options_.service_name, now, &why);
  const std::vector<std::string> wanted_uris = options_.spiffe_id.empty()
                                                   ? std::vector<std::string>{}
                                                   : std::vector<std::string>{options_.spiffe_id};
  if (info.ok() && info->uri_sans != wanted_uris) {
    why = options_.spiffe_id.empty()
              ? "it carries a URI SAN and --spiffe-id is not given"
              : "it does not carry just the URI SAN " + options_.spiffe_id + " (--spiffe-id)";
    info = make_error(ErrorKind::kConfig, Side::kInternal, "SPIFFE ID");
  }
  if (!info.ok()) {
    RS_INFO("%s: not reusing the certificate in %s: %s", std::string(name()).c_str(),
            options_.cert_dir.c_str(), why.c_str());
    return false;
  }
  // Reused only while it would not be due yet had this run issued it: more validity
  // left than (lifetime - renew_after).
  auto due_margin =
      std::chrono::duration_cast<std::chrono::seconds>(options_.lifetime - options_.renew_after);
  if (info->not_after - now <= due_margin.count()) {
    RS_INFO("%s: the certificate in %s is due for renewal (expires %s); issuing a new one",
            std::string(name()).c_str(), options_.cert_dir.c_str(),
            iso_time(info->not_after).c_str());
    return false;
  }
  RS_INFO("%s: reusing the certificate in %s (serial %s, expires %s)", std::string(name()).c_str(),
          options_.cert_dir.c_str(), info->serial_hex.c_str(), iso_time(info->not_after).c_str());
  *out = std::move(stored);
  return true;
}

// ---- shared helpers ---------------------------------------------------------------------

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string iso_time(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string human_seconds(int64_t seconds) {
  std::string sign = seconds < 0 ? "-" : "";
  uint64_t s = static_cast<uint64_t>(seconds < 0 ? -seconds : seconds);
  char buf[64];
  if (s >= 86400) {
    std::snprintf(buf, sizeof(buf), "%llud%lluh", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s % 86400 / 3600));
  } else if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lluh%llum", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof(buf), "%llum%llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%llus", static_cast<unsigned long long>(s));
  }
  return sign + buf;
}

bool read_whole_file(const std::string& path, std::string* out, std::string* detail) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *detail = path + ": " + std::strerror(errno);
    return false;
  }
  out->clear();
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      out->append(buf, static_cast<size_t>(n));
      if (out->size() > (16u << 20)) {
        ::close(fd);
        *detail = path + ": larger than 16 MB";
        return false;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    if (n < 0) {
      *detail = path + ": " + std::strerror(err);
      return false;
    }
    return true;
  }
}

bool write_file_atomically(const std::string& path, std::string_view data, mode_t mode,
                           std::string* detail) {
  std::string dir = directory_of(path);
  std::string tmp = path + ".tmpXXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // created 0600: a key is never readable
  if (fd < 0) {
    *detail = tmp + ": " + std::strerror(errno);
    return false;
  }
  auto bail = [&](const std::string& what) {
    *detail = what + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return false;
  };
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return bail(tmp);
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) return bail(tmp);
  if (::fsync(fd) != 0) return bail(tmp);
  if (::close(fd) != 0) {
    *detail = tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *detail = path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

size_t count_trust_cas(std::string_view bundle_pem, std::string* detail) {
  size_t blocks = 0;
  for (size_t at = bundle_pem.find("-----BEGIN CERTIFICATE-----"); at != std::string_view::npos;
       at = bundle_pem.find("-----BEGIN CERTIFICATE-----", at + 1)) {
    ++blocks;
  }
  if (blocks == 0) {
    *detail = "the trust bundle holds no PEM certificate";
    return 0;
  }
  std::vector<tls::CertInfo> certs = tls::inspect_bundle(bundle_pem);
  if (certs.size() != blocks) {
    *detail = "the trust bundle has " + std::to_string(blocks) + " certificates but only " +
              std::to_string(certs.size()) + " parse (truncated or damaged)";
    return 0;
  }
  size_t cas = 0;
  for (const auto& cert : certs) cas += cert.is_ca ? 1 : 0;
  if (cas == 0) *detail = "the trust bundle holds no CA certificate";
  return cas;
}

int64_t renewal_time(const tls::CertInfo& cert, int64_t obtained_at, Duration lifetime,
                     Duration renew_after, unsigned jitter_percent, double u) {
  double life = std::chrono::duration<double>(lifetime).count();
  double renew = std::chrono::duration<double>(renew_after).count();
  // From when it was obtained, not from not_before: CAs backdate (ours and cfssl's by
  // five minutes), which would otherwise make a short-lived certificate due at once.
  double left = static_cast<double>(cert.not_after - obtained_at);
  double after = left >= life ? renew : std::max(left, 0.0) * (renew / life);
  after -= after * (std::min(jitter_percent, 90u) / 100.0) * std::clamp(u, 0.0, 1.0);
  return obtained_at + static_cast<int64_t>(after + 0.999);
}

int64_t parse_retry_after(std::string_view value, int64_t now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return -1;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    if (value.size() > 9) return 999'999'999;  // absurd, but a number: capped by the caller
    return std::stoll(std::string(value));
  }
  // IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
  struct tm tm {};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return -1;
  return std::max<int64_t>(static_cast<int64_t>(timegm(&tm)) - now, 0);
}

int64_t retry_delay_ms(unsigned failures, int64_t base_ms, int64_t cap_ms, double u,
                       int64_t retry_after_ms) {
  int64_t ceiling = std::max<int64_t>(base_ms, kMinRetryMs);
  for (unsigned i = 1; i < failures && ceiling < cap_ms; ++i) ceiling *= 2;
  ceiling = std::max(std::min(ceiling, cap_ms), kMinRetryMs);
  auto delay = kMinRetryMs + static_cast<int64_t>(static_cast<double>(ceiling - kMinRetryMs) *
                                                  std::clamp(u, 0.0, 1.0));
  return std::max(delay, retry_after_ms);
}

std::unique_ptr<CertificateSource> make_file_source(std::string cert_path, std::string key_path) {
  return std::make_unique<FileSource>(std::move(cert_path), std::move(key_path));
}

std::unique_ptr<CertificateSource> make_local_issuer(std::string ca_cert_path,
                                                     std::string ca_key_path,
                                                     IssuingOptions options) {
  return std::make_unique<LocalIssuer>(std::move(ca_cert_path), std::move(ca_key_path),
                                       std::move(options));
}

std::unique_ptr<CertificateSource> make_remote_ca(RemoteCaOptions remote, IssuingOptions options) {
  return std::make_unique<RemoteCa>(std::move(remote), std::move(options));
}

bool read_auth_key(const std::string& path, std::string* key, std::string* detail) {
  std::string text;
  if (!read_whole_file(path, &text, detail)) return false;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.empty() || text.size() % 2 != 0) {
    *detail = path + ": not a hex key (cfssl's auth_keys \"key\")";
    return false;
  }
  key->clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) {
      *detail = path + ": not a hex key (cfssl's auth_keys \"key\")";
      return false;
    }
    key->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::string base64_encode(std::string_view in, bool url) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static constexpr char kUrlAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* alphabet = url ? kUrlAlphabet : kAlphabet;
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (i + 1 < in.size()) {
      out += alphabet[(n >> 6) & 63];
    } else if (!url) {
      out += '=';
    }
    if (i + 2 < in.size()) {
      out += alphabet[n & 63];
    } else if (!url) {
      out += '=';
    }
  }
  return out;
}

std::string cfssl_authsign_request(std::string_view request, std::string_view key) {
  uint8_t token[WC_SHA256_DIGEST_SIZE] = {};
  Hmac hmac;
  if (wc_HmacInit(&hmac, nullptr, INVALID_DEVID) == 0) {
    if (wc_HmacSetKey(&hmac, WC_SHA256, reinterpret_cast<const byte*>(key.data()),
                      static_cast<word32>(key.size())) == 0) {
      wc_HmacUpdate(&hmac, reinterpret_cast<const byte*>(request.data()),
                    static_cast<word32>(request.size()));
      wc_HmacFinal(&hmac, token);
    }
    wc_HmacFree(&hmac);
  }
  return "{\"token\":\"" +
         base64_encode(std::string_view(reinterpret_cast<const char*>(token), sizeof(token))) +
         "\",\"request\":\"" + base64_encode(request) + "\"}";
}

bool parse_http_url(std::string_view url, HttpUrl* out, std::string* detail) {
  out->https = url.rfind("https://", 0) == 0;
  if (!out->https && url.rfind("http://", 0) != 0) {
    *detail = "not an http:// or https:// URL";
    return false;
  }
  url.remove_prefix(out->https ? 8 : 7);
  size_t slash = url.find_first_of("/?");
  std::string_view authority = url.substr(0, slash);
  std::string_view rest = slash == std::string_view::npos ? "" : url.substr(slash);
  if (authority.empty()) {
    *detail = "no host";
    return false;
  }
  out->port = out->https ? 443 : 80;
  size_t colon = authority.rfind(':');
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *detail = "bad IPv6 address";
      return false;
    }
    out->host = std::string(authority.substr(1, close - 1));
    colon = authority.find(':', close);
  } else {
    out->host = std::string(authority.substr(0, colon));
  }
  if (colon != std::string_view::npos) {
    std::string port(authority.substr(colon + 1));
    char* end = nullptr;
    long value = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || value <= 0 || value > 65535) {
      *detail = "bad port '" + port + "'";
      return false;
    }
    out->port = static_cast<uint16_t>(value);
  }
  size_t q = rest.find('?');
  out->path = std::string(rest.substr(0, q));
  out->query = q == std::string_view::npos ? "" : std::string(rest.substr(q + 1));
  if (out->path.empty()) out->path = "/";
  return true;
}

bool make_ca_tls(const std::string& trust_path, const std::string& client_cert_path,
                 const std::string& client_key_path, CaTls* tls, std::string* why) {
  tls::ContextOptions options;
  options.role = tls::Role::kClient;
  std::string detail;
  if (!read_whole_file(trust_path, &options.trust_pem, &detail)) {
    *why = "--ca-trust " + detail;
    return false;
  }
  tls::Identity client;
  const bool with_client = !client_cert_path.empty();
  if (with_client && (!read_whole_file(client_cert_path, &client.cert_chain_pem, &detail) ||
                      !read_whole_file(client_key_path, &client.key_pem, &detail))) {
    *why = "--ca-client-cert/--ca-client-key " + detail;
    return false;
  }
  auto context = tls::TlsContext::create(options, with_client ? &client : nullptr, 1, &detail);
  if (!context.ok()) {
    *why = "CA TLS: " + detail;
    return false;
  }
  tls->context = std::move(*context);
  return true;
}

std::string_view HttpResponse::field(std::string_view name) const {
  for (const auto& [key, value] : fields) {
    if (http::iequals(key, name)) return value;
  }
  return {};
}

Result<HttpResponse> http_request(std::string_view method, const HttpUrl& url,
                                  std::string_view content_type, std::string_view body,
                                  const CaTls* tls, std::chrono::milliseconds timeout,
                                  std::string* detail) {
  auto io_fail = [&](std::string why) -> Result<HttpResponse> {
    *detail = std::move(why);
    return make_error(ErrorKind::kIo, Side::kUpstream, "http");
  };
  if (url.https && (tls == nullptr || !tls->context)) {
    return io_fail("an https:// CA needs a trust bundle (--ca-trust)");
  }
  const auto deadline = net::BlockingConnection::Clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = std::to_string(url.port);
  int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) return io_fail("resolving " + url.host + ": " + gai_strerror(rc));
  std::unique_ptr<net::BlockingConnection> conn;
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    SocketAddress address;
    if (ai->ai_addrlen > sizeof(address.storage)) continue;
    std::memcpy(&address.storage, ai->ai_addr, ai->ai_addrlen);
    address.length = static_cast<socklen_t>(ai->ai_addrlen);
    conn = std::make_unique<net::BlockingConnection>(address, deadline);
    if (conn->ok()) break;
    last_error = conn->error();
    conn.reset();
  }
  ::freeaddrinfo(found);
  if (!conn) return io_fail(last_error);
  // The CA server's certificate must chain to --ca-trust and name the URL's host.
  if (url.https && !conn->start_tls(tls->context->ctx(0), url.host, url.host)) {
    return io_fail(conn->error());
  }

  std::string host_header =
      url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  const bool get = method == "GET";
  std::string request = std::string(method) + " " + url.path +
                        (url.query.empty() ? "" : "?" + url.query) +
                        " HTTP/1.1\r\nHost: " + host_header + ":" + port;
  if (!get) {
    request += "\r\nContent-Type: " + std::string(content_type) +
               "\r\nContent-Length: " + std::to_string(body.size());
  }
  request += "\r\nConnection: close\r\nUser-Agent: ringside\r\n\r\n";
  if (!get) request.append(body);
  if (!conn->send_all(request)) return io_fail(conn->error());

  // The answer meets the same parser, and strictness, as any upstream's.
  http::ResponseParser parser;
  parser.expect_response_to(http::RequestKind::kOther);
  HttpResponse response;
  bool complete = false, peer_done = false;
  char buffer[8192];
  while (!complete) {
    http::Step step;
    std::string_view input;
    ssize_t n = 0;
    if (!peer_done) {
      n = conn->receive(buffer, sizeof(buffer));
      if (n < 0) {
        return io_fail(conn->error() == "timeout" ? "no complete response within " +
                                                        std::to_string(timeout.count()) + " ms"
                                                  : conn->error());
      }
      peer_done = n == 0;
      input = std::string_view(buffer, static_cast<size_t>(n));
    }
    do {
      step = peer_done && input.empty() ? parser.finish() : parser.parse(input);
      input.remove_prefix(std::min(step.consumed, input.size()));
      switch (step.event) {
        case http::Event::kError:
          return io_fail("invalid HTTP response: " + std::string(parser.error().reason));
        case http::Event::kHead:
          if (parser.head().interim()) break;
          response.status = parser.head().status;
          for (const http::Field& field : parser.head().fields) {
            response.fields.emplace_back(std::string(field.name), std::string(field.value));
            if (http::iequals(field.name, "retry-after")) {
              response.retry_after_s = parse_retry_after(field.value, unix_now());
            }
          }
          break;
        case http::Event::kBody:
          if (response.body.size() + step.body.size() > (1u << 20)) {
            return io_fail("response larger than 1 MB");
          }
          response.body.append(step.body);
          break;
        case http::Event::kMessageComplete:
          complete = true;
          break;
        case http::Event::kTunnel:
          return io_fail("the CA switched protocols");
        case http::Event::kNeedMore:
          if (peer_done) return io_fail("the CA closed the connection before a complete response");
          break;
      }
    } while (!complete && !input.empty());
  }
  return response;
}

std::string cfssl_sign_request(std::string_view csr_pem, std::string_view profile) {
  std::string out = "{\"certificate_request\":\"";
  for (char c : csr_pem) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c != '\r') {
      out += c;
    }
  }
  out += "\"";
  if (!profile.empty()) out += ",\"profile\":\"" + std::string(profile) + "\"";
  out += "}";
  return out;
}

Result<std::string> parse_cfssl_sign_response(std::string_view body, std::string* detail) {
  auto bad = [&](std::string why) -> Result<std::string> {
    *detail = std::move(why);
    return make_error(ErrorKind::kProtocol, Side::kUpstream, "cfssl");
  };
  std::string why;
  auto answer = parse_json(body, &why);
  if (!answer.ok()) return bad("not a cfssl response: " + why);
  const JsonValue* success = answer->find("success");
  if (success == nullptr || success->type() != JsonValue::Type::kBool) {
    return bad("not a cfssl response");
  }
  if (!success->boolean()) {
    const JsonValue* errors = answer->find("errors");
    if (errors != nullptr && errors->is_array() && !errors->items().empty() &&
        !errors->items()[0].string_at("message").empty()) {
      return bad("cfssl refused: " + std::string(errors->items()[0].string_at("message")));
    }
    return bad("cfssl refused the request");
  }
  const JsonValue* result = answer->find("result");
  std::string cert(result != nullptr ? result->string_at("certificate") : "");
  if (cert.empty()) return bad("cfssl response has no result.certificate");
  if (cert.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return bad("cfssl result.certificate is not PEM");
  }
  return cert;
}

}  // namespace ringside::certs
