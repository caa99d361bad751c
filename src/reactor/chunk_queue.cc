#include <cassert>
#include <cstring>

#include "ringside/buffer.h"

namespace ringside {

// Invariants: an empty queue holds no chunk; every chunk but the tail holds unread bytes
// (the tail may be empty only between reserve() and commit()).
struct ChunkQueue::Chunk {
  Chunk* next = nullptr;
  uint32_t begin = 0;  // first unread byte
  uint32_t end = 0;    // one past the last written byte
  uint8_t data[kChunkSize];
};

namespace {

// Bounds the per-thread cache: 256 chunks are ~4.2 MiB; beyond that chunks go back to
// malloc so one burst does not pin memory on a worker forever.
constexpr size_t kMaxPooledChunks = 256;

struct ChunkPool {
  ChunkQueue::Chunk* free_list = nullptr;
  size_t count = 0;

  ~ChunkPool() { trim(); }

  void trim() {
    while (free_list != nullptr) {
      ChunkQueue::Chunk* next = free_list->next;
      delete free_list;
      free_list = next;
    }
    count = 0;
  }
};

thread_local ChunkPool tls_pool;

}  // namespace

namespace {

ChunkQueue::Chunk* acquire_chunk() {
  ChunkPool& pool = tls_pool;
  ChunkQueue::Chunk* chunk = pool.free_list;
  if (chunk != nullptr) {
    pool.free_list = chunk->next;
    --pool.count;
  } else {
    chunk = new ChunkQueue::Chunk;
  }
  chunk->next = nullptr;
  chunk->begin = 0;
  chunk->end = 0;
  return chunk;
}

void release_chunk(ChunkQueue::Chunk* chunk) {
  ChunkPool& pool = tls_pool;
  if (pool.count >= kMaxPooledChunks) {
    delete chunk;
    return;
  }
  chunk->next = pool.free_list;
  pool.free_list = chunk;
  ++pool.count;
}

}  // namespace

ChunkQueue::ChunkQueue(ChunkQueue&& other) noexcept
    : head_(other.head_), tail_(other.tail_), size_(other.size_) {
  other.head_ = other.tail_ = nullptr;
  other.size_ = 0;
}

ChunkQueue& ChunkQueue::operator=(ChunkQueue&& other) noexcept {
  if (this != &other) {
    clear();
    head_ = other.head_;
    tail_ = other.tail_;
    size_ = other.size_;
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

ChunkQueue::~ChunkQueue() { clear(); }

void ChunkQueue::append(const void* data, size_t len) {
  const auto* src = static_cast<const uint8_t*>(data);
  while (len > 0) {
    std::span<uint8_t> space = reserve();
    size_t n = len < space.size() ? len : space.size();
    std::memcpy(space.data(), src, n);
    commit(n);
    src += n;
    len -= n;
  }
}

std::span<uint8_t> ChunkQueue::reserve() {
  if (tail_ == nullptr || tail_->end == kChunkSize) {
    Chunk* chunk = acquire_chunk();
    if (tail_ == nullptr) {
      head_ = chunk;
    } else {
      tail_->next = chunk;
    }
    tail_ = chunk;
  }
  return {tail_->data + tail_->end, kChunkSize - tail_->end};
}

void ChunkQueue::commit(size_t n) {
  assert(tail_ != nullptr && n <= kChunkSize - tail_->end);
  tail_->end += static_cast<uint32_t>(n);
  size_ += n;
  // A reserve() that wrote nothing into an otherwise empty queue must not leave it
  // holding a chunk.
  if (size_ == 0) clear();
}

std::span<const uint8_t> ChunkQueue::front() const {
  if (head_ == nullptr) return {};
  return {head_->data + head_->begin, head_->end - head_->begin};
}

size_t ChunkQueue::gather(std::span<iovec> out, size_t max_bytes) const {
  size_t count = 0;
  for (Chunk* chunk = head_; chunk != nullptr && count < out.size() && max_bytes > 0;
       chunk = chunk->next) {
    size_t len = chunk->end - chunk->begin;
    if (len == 0) continue;
    if (len > max_bytes) len = max_bytes;
    out[count].iov_base = chunk->data + chunk->begin;
    out[count].iov_len = len;
    ++count;
    max_bytes -= len;
  }
  return count;
}

void ChunkQueue::consume(size_t n) {
  assert(n <= size_);
  size_ -= n;
  while (n > 0) {
    size_t available = head_->end - head_->begin;
    if (n < available) {
      head_->begin += static_cast<uint32_t>(n);
      return;
    }
    n -= available;
    Chunk* next = head_->next;
    release_chunk(head_);
    head_ = next;
    if (head_ == nullptr) tail_ = nullptr;
  }
  // An empty queue holds no memory, not even a reserved but uncommitted tail.
  if (size_ == 0) clear();
}

void ChunkQueue::clear() {
  while (head_ != nullptr) {
    Chunk* next = head_->next;
    release_chunk(head_);
    head_ = next;
  }
  tail_ = nullptr;
  size_ = 0;
}

size_t ChunkQueue::pooled_chunks() { return tls_pool.count; }

void ChunkQueue::trim_pool() { tls_pool.trim(); }

}  // namespace ringside
