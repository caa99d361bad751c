// libFuzzer target: RequestParser on arbitrary bytes. Besides the sanitizers' checks it
// asserts that the parse does not depend on how the bytes are split (http_fuzz_common.h).
#include <cstddef>
#include <cstdint>

#include "http_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringside::http;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fuzz::check_split_invariant(bytes, [] { return RequestParser(); });
  const Limits small = fuzz::small_limits();
  fuzz::check_split_invariant(bytes, [&] { return RequestParser(small); });
  return 0;
}
