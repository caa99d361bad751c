// Request ids: UUIDv4-shaped text from a per-thread xoshiro256** generator, seeded once
// per thread from getrandom(2), so an id costs a few nanoseconds and no system call.
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "ringside/http_proxy.h"

namespace ringside::http {
namespace {

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// splitmix64: spreads a weak fallback seed over the whole state.
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman and Vigna): fast, 256-bit state, passes BigCrush.
class Xoshiro256 {
 public:
  Xoshiro256() {
    size_t got = 0;
    auto* bytes = reinterpret_cast<unsigned char*>(s_);
    while (got < sizeof(s_)) {
      const ssize_t n = getrandom(bytes + got, sizeof(s_) - got, 0);
      if (n > 0) {
        got += static_cast<size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        break;
      }
    }
    if (got < sizeof(s_)) {
      // getrandom is not available (very old kernel or seccomp): ids must still differ
      // between threads and runs; they need not be secret.
      uint64_t seed =
          static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
          reinterpret_cast<uintptr_t>(this);
      for (uint64_t& word : s_) word = splitmix64(seed);
    }
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the all-zero state is a fixed point
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  uint64_t s_[4];
};

Xoshiro256& thread_generator() {
  static thread_local Xoshiro256 generator;
  return generator;
}

}  // namespace

RequestId generate_request_id() {
  Xoshiro256& generator = thread_generator();
  uint8_t bytes[16];
  const uint64_t hi = generator.next();
  const uint64_t lo = generator.next();
  std::memcpy(bytes, &hi, 8);
  std::memcpy(bytes + 8, &lo, 8);
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // variant 10 (RFC 4122)

  // Byte i's two digits go to kAt[i] (8-4-4-4-12 groups); a pair table and fixed dash
  // positions keep it to a copy per byte, without a branch per digit.
  static constexpr auto kPairs = [] {
    std::array<char, 512> pairs{};
    constexpr char kHex[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
      pairs[static_cast<size_t>(2 * b)] = kHex[b >> 4];
      pairs[static_cast<size_t>(2 * b + 1)] = kHex[b & 0x0f];
    }
    return pairs;
  }();
  static constexpr uint8_t kAt[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  RequestId id;
  id.text[8] = id.text[13] = id.text[18] = id.text[23] = '-';
  for (int i = 0; i < 16; ++i) std::memcpy(id.text + kAt[i], &kPairs[2u * bytes[i]], 2);
  return id;
}

}  // namespace ringside::http
