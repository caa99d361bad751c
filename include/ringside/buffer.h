// ChunkQueue: the byte FIFO used for everything a connection has to send. It is made of
// fixed-size chunks taken from a per-thread free list, so a connection with nothing
// queued holds no memory, and a worker never calls malloc on the steady-state path.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace ringside {

class ChunkQueue {
 public:
  // Fits one full TLS record (16 KiB plaintext + header, tag and padding).
  static constexpr size_t kChunkSize = 16 * 1024 + 512;

  ChunkQueue() = default;
  ChunkQueue(const ChunkQueue&) = delete;
  ChunkQueue& operator=(const ChunkQueue&) = delete;
  ChunkQueue(ChunkQueue&& other) noexcept;
  ChunkQueue& operator=(ChunkQueue&& other) noexcept;
  ~ChunkQueue();

  // Copies len bytes to the tail.
  void append(const void* data, size_t len);
  // Writable space at the tail: at least one byte, at most one chunk. Call commit()
  // with the number of bytes actually written.
  std::span<uint8_t> reserve();
  void commit(size_t n);
  // The contiguous readable bytes at the head (the first chunk's part).
  std::span<const uint8_t> front() const;
  // The readable bytes from the head as up to out.size() spans (one per chunk), at most
  // max_bytes together. Returns how many spans were filled (0 when empty).
  size_t gather(std::span<iovec> out, size_t max_bytes) const;
  // Drops n bytes from the head; returns emptied chunks to the pool.
  void consume(size_t n);
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear();

  // Chunks cached in this thread's pool (for tests and stats).
  static size_t pooled_chunks();
  // Frees this thread's pooled chunks.
  static void trim_pool();

  // One fixed-size block of the queue; opaque, defined in src/reactor/chunk_queue.cc.
  struct Chunk;

 private:
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ringside
