// Counts every allocation of the test binary that includes this header: it replaces the
// global operator new/delete. Include it from exactly one file of a binary, and only in
// builds without sanitizers (they own the allocator).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace ringside::testing {
inline std::atomic<size_t> g_allocations{0};
}  // namespace ringside::testing

void* operator new(size_t size) {
  ringside::testing::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
