// Stand-in until the project's TLS layer (src/tls) is linked: https:// is refused with a
// clear message instead of failing at link time.
#include "tls_link.h"

namespace ringside::bench {

TlsResumeSlot::~TlsResumeSlot() = default;

std::unique_ptr<TlsClient> TlsClient::create(const TlsClientOptions&, unsigned,
                                             std::string* error) {
  *error = "this build of ringside-bench has no TLS support";
  return nullptr;
}

}  // namespace ringside::bench
