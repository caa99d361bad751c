// Counts every allocation of the test binary that includes this header: it replaces the
// global operator new/delete. Include it from exactly one file of a binary, and only in
// builds without sanitizers (they own the allocator).
#pragma once

#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace ringside::testing {
inline std::atomic<size_t> g_allocations{0};
// Bytes held by live operator-new allocations (as malloc_usable_size counts them).
inline std::atomic<size_t> g_live_bytes{0};
}  // namespace ringside::testing

void* operator new(size_t size) {
  ringside::testing::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    ringside::testing::g_live_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
    return p;
  }
  throw std::bad_alloc();
}
namespace ringside::testing {
inline void counted_free(void* p) noexcept {
  if (p != nullptr) g_live_bytes.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
  std::free(p);
}
}  // namespace ringside::testing
void operator delete(void* p) noexcept { ringside::testing::counted_free(p); }
void operator delete(void* p, size_t) noexcept { ringside::testing::counted_free(p); }
