// libFuzzer target: ResponseParser on arbitrary bytes, answering a GET, a HEAD or a
// CONNECT (chosen from the input length), with the split invariant of http_fuzz_common.h.
#include <cstddef>
#include <cstdint>

#include "http_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringside::http;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const RequestKind kinds[] = {RequestKind::kOther, RequestKind::kHead, RequestKind::kConnect};
  const RequestKind kind = kinds[size % 3];
  fuzz::check_split_invariant(bytes, [&] {
    ResponseParser p;
    p.expect_response_to(kind);
    return p;
  });
  const Limits small = fuzz::small_limits();
  fuzz::check_split_invariant(bytes, [&] {
    ResponseParser p(small);
    p.expect_response_to(kind);
    return p;
  });
  return 0;
}
