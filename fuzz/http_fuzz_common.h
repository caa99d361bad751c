// Shared by the HTTP fuzz targets: parse the input one-shot, byte by byte and split at
// points chosen from the input itself, with default and with small limits; every way of
// feeding must give the same transcript, else abort (a fuzzer finding).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "http_transcript.h"
#include "ringside/http.h"

namespace ringside::http::fuzz {

inline Limits small_limits() {
  Limits l;
  l.max_start_line = 64;
  l.max_head_bytes = 256;
  l.max_fields = 8;
  l.max_chunk_line = 32;
  l.max_body = 1000;
  return l;
}

[[noreturn]] inline void report_mismatch(const char* how, const std::string& a,
                                         const std::string& b) {
  std::fprintf(stderr, "split invariant broken (%s)\n--- one-shot:\n%s--- %s:\n%s", how, a.c_str(),
               how, b.c_str());
  std::abort();
}

// make() returns a fresh parser configured for this input.
template <typename Make>
void check_split_invariant(std::string_view bytes, Make make) {
  auto whole_parser = make();
  const testing::Transcript whole = testing::feed_whole(whole_parser, bytes);
  if (whole.contract_broken) report_mismatch("contract of parse() broken", whole.text, "");
  auto bytewise_parser = make();
  const testing::Transcript bytewise = testing::feed_bytewise(bytewise_parser, bytes);
  if (bytewise.contract_broken) {
    report_mismatch("contract of parse() broken, byte by byte", whole.text, bytewise.text);
  }
  if (bytewise.text != whole.text) report_mismatch("byte by byte", whole.text, bytewise.text);

  // Split points taken from the input, so the fuzzer steers them.
  uint64_t h = 1469598103934665603ull;
  for (char c : bytes) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  const size_t n = bytes.size();
  const size_t a = static_cast<size_t>(h % (n + 1));
  const size_t b = a + static_cast<size_t>((h >> 32) % (n - a + 1));
  auto split_parser = make();
  const testing::Transcript split = testing::feed_split(split_parser, bytes, a);
  if (split.contract_broken) report_mismatch("contract broken, split", whole.text, split.text);
  if (split.text != whole.text) report_mismatch("split in two", whole.text, split.text);
  auto three_parser = make();
  const testing::Transcript three =
      testing::feed(three_parser, {bytes.substr(0, a), bytes.substr(a, b - a), bytes.substr(b)});
  if (three.contract_broken) report_mismatch("contract broken, three", whole.text, three.text);
  if (three.text != whole.text) report_mismatch("split in three", whole.text, three.text);
  if (three.message_ends != whole.message_ends) {
    report_mismatch("message boundaries", whole.text, three.text);
  }
}

}  // namespace ringside::http::fuzz
