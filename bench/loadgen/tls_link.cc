// TlsLink over the project's TLS layer (ringside::tls, wolfSSL over memory buffers).
#include "tls_link.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <fstream>
#include <sstream>

#include "ringside/buffer.h"
#include "ringside/tls.h"

namespace ringside::bench {

namespace {

bool read_text_file(const std::string& path, std::string* text, std::string* error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    *error = "cannot read " + path;
    return false;
  }
  std::ostringstream content;
  content << file.rdbuf();
  *text = content.str();
  return true;
}

class WolfTlsLink final : public TlsLink {
 public:
  WolfTlsLink(WOLFSSL_CTX* ctx, const std::string& sni, const std::string& verify_name,
              const std::string& alpn, TlsResumeSlot* slot)
      : session_(ctx, tls::Role::kClient, sni, verify_name) {
    session_.set_output(&output_);
    if (session_.broken()) return;
    // Offered per session (wolfSSL copies the list): works with a distribution's wolfSSL
    // too, which cannot keep an ALPN list on a context.
    alpn_refused_ = !alpn.empty() && !session_.offer_alpn(alpn);
    if (slot != nullptr) {
      // TLS 1.2 needs the ticket extension asked for; TLS 1.3 tickets come regardless.
      wolfSSL_UseSessionTicket(session_.native());
      if (slot->session != nullptr) {
        wolfSSL_set_session(session_.native(), static_cast<WOLFSSL_SESSION*>(slot->session));
      }
    }
  }

  void set_input(const uint8_t* data, size_t len) override { session_.set_input(data, len); }
  TlsStep handshake() override {
    return step(session_.broken() || alpn_refused_ ? tls::TlsStatus::kError : session_.handshake());
  }
  TlsStep read(uint8_t* out, size_t cap, size_t* n) override {
    return step(session_.read(out, cap, n));
  }
  TlsStep write(const uint8_t* data, size_t len) override {
    return step(session_.write(data, len));
  }
  void shutdown() override { session_.shutdown(); }
  std::span<const uint8_t> pending_output() const override { return output_.front(); }
  void consume_output(size_t n) override { output_.consume(n); }
  bool resumed() const override { return session_.resumed(); }
  std::string_view alpn() const override { return session_.alpn(); }
  void save_session(TlsResumeSlot* slot) override {
    WOLFSSL_SESSION* saved = wolfSSL_get1_session(session_.native());
    if (saved == nullptr) return;
    if (slot->session != nullptr)
      wolfSSL_SESSION_free(static_cast<WOLFSSL_SESSION*>(slot->session));
    slot->session = saved;
  }
  std::string error() const override {
    if (session_.broken()) return "cannot create a TLS session";
    if (alpn_refused_) return "wolfSSL refused the ALPN list";
    return session_.error_detail().empty() ? "TLS failure" : session_.error_detail();
  }

 private:
  static TlsStep step(tls::TlsStatus status) {
    switch (status) {
      case tls::TlsStatus::kOk:
        return TlsStep::kOk;
      case tls::TlsStatus::kWantRead:
        return TlsStep::kWantRead;
      case tls::TlsStatus::kClosed:
        return TlsStep::kClosed;
      case tls::TlsStatus::kError:
        return TlsStep::kError;
    }
    return TlsStep::kError;
  }

  ChunkQueue output_;  // declared before session_: the session appends to it
  tls::TlsSession session_;
  bool alpn_refused_ = false;
};

class WolfTlsClient final : public TlsClient {
 public:
  WolfTlsClient(std::shared_ptr<const tls::TlsContext> context, std::string sni,
                std::string verify_name, std::string alpn)
      : context_(std::move(context)),
        sni_(std::move(sni)),
        verify_name_(std::move(verify_name)),
        alpn_(std::move(alpn)) {}

  std::unique_ptr<TlsLink> connect(unsigned thread, TlsResumeSlot* slot) override {
    return std::make_unique<WolfTlsLink>(context_->ctx(thread % context_->workers()), sni_,
                                         verify_name_, alpn_, slot);
  }

 private:
  std::shared_ptr<const tls::TlsContext> context_;
  std::string sni_;
  std::string verify_name_;
  std::string alpn_;
};

}  // namespace

TlsResumeSlot::~TlsResumeSlot() {
  if (session != nullptr) wolfSSL_SESSION_free(static_cast<WOLFSSL_SESSION*>(session));
}

std::unique_ptr<TlsClient> TlsClient::create(const TlsClientOptions& options, unsigned threads,
                                             std::string* error) {
  tls::ContextOptions context_options;
  context_options.role = tls::Role::kClient;
  context_options.insecure = options.insecure;
  context_options.tls13_only = options.tls13_only;
  if (!options.cacert_file.empty() &&
      !read_text_file(options.cacert_file, &context_options.trust_pem, error)) {
    return nullptr;
  }
  tls::Identity identity;
  bool have_identity = !options.cert_file.empty();
  if (have_identity && (!read_text_file(options.cert_file, &identity.cert_chain_pem, error) ||
                        !read_text_file(options.key_file, &identity.key_pem, error))) {
    return nullptr;
  }
  std::string detail;
  auto context = tls::TlsContext::create(context_options, have_identity ? &identity : nullptr,
                                         threads, &detail);
  if (!context.ok()) {
    *error = "TLS setup failed: " + detail;
    return nullptr;
  }
  // Without --insecure the server must carry the SNI name as a DNS SAN; an IP literal
  // target without --sni is checked against the trust bundle only.
  std::string verify_name = options.insecure ? std::string() : options.sni;
  return std::make_unique<WolfTlsClient>(std::move(context.value()), options.sni, verify_name,
                                         options.alpn);
}

}  // namespace ringside::bench
