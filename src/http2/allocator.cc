// The nghttp2 allocation hooks: malloc with a size header, so that each thread knows what
// its HTTP/2 sessions hold (docs/http2.md says why not a pool).
#include <cstdlib>
#include <cstring>

#include "ringside/http2.h"

namespace ringside::http2 {
namespace {

// The header keeps malloc's alignment for what follows it.
constexpr size_t kHeader = alignof(std::max_align_t);

}  // namespace

Allocator& Allocator::for_this_thread() {
  thread_local Allocator allocator;
  return allocator;
}

void* Allocator::allocate(size_t size) {
  auto* block = static_cast<unsigned char*>(std::malloc(kHeader + size));
  if (block == nullptr) return nullptr;
  std::memcpy(block, &size, sizeof size);
  live_bytes_ += size;
  if (live_bytes_ > peak_bytes_) peak_bytes_ = live_bytes_;
  ++live_blocks_;
  ++allocations_;
  return block + kHeader;
}

void Allocator::release(void* ptr) {
  if (ptr == nullptr) return;
  unsigned char* block = static_cast<unsigned char*>(ptr) - kHeader;
  size_t size = 0;
  std::memcpy(&size, block, sizeof size);
  live_bytes_ -= size;
  --live_blocks_;
  std::free(block);
}

void* Allocator::reallocate(void* ptr, size_t size) {
  if (ptr == nullptr) return allocate(size);
  unsigned char* block = static_cast<unsigned char*>(ptr) - kHeader;
  size_t old_size = 0;
  std::memcpy(&old_size, block, sizeof old_size);
  auto* grown = static_cast<unsigned char*>(std::realloc(block, kHeader + size));
  if (grown == nullptr) return nullptr;
  std::memcpy(grown, &size, sizeof size);
  live_bytes_ = live_bytes_ - old_size + size;
  if (live_bytes_ > peak_bytes_) peak_bytes_ = live_bytes_;
  ++allocations_;
  return grown + kHeader;
}

}  // namespace ringside::http2
