/* The random source of ringside's wolfSSL build (CUSTOM_RAND_GENERATE_BLOCK).
 *
 * wolfSSL's default gives every WOLFSSL its own Hash-DRBG, and instantiating one runs
 * the DRBG known-answer health test: about 7% of the CPU of a full TLS 1.3 handshake
 * (measured with callgrind) and ~130 bytes of heap per connection. Instead, every
 * random byte comes from the kernel's CSPRNG through getrandom(2), read ahead into a
 * small per-thread buffer (one syscall every few handshakes); bytes are wiped from
 * the buffer as they are handed out. No locks: each worker thread has its own buffer.
 * Built into libwolfssl.a by tools/build-wolfssl.sh. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

int ringside_random_block(unsigned char* out, unsigned int size);

static __thread unsigned char pool[512];
static __thread unsigned int pool_pos = sizeof(pool);
static __thread unsigned int pool_end = sizeof(pool);

int ringside_random_block(unsigned char* out, unsigned int size) {
  while (size > 0) {
    if (pool_pos == pool_end) {
      if (size >= sizeof(pool)) {
        ssize_t n = getrandom(out, size, 0);
        if (n < 0) {
          if (errno == EINTR) continue;
          return -1;
        }
        out += n;
        size -= (unsigned int)n;
        continue;
      }
      ssize_t n = getrandom(pool, sizeof(pool), 0);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return -1;
      }
      pool_pos = 0;
      pool_end = (unsigned int)n;
    }
    unsigned int take = pool_end - pool_pos;
    if (take > size) take = size;
    memcpy(out, pool + pool_pos, take);
    memset(pool + pool_pos, 0, take);
    pool_pos += take;
    out += take;
    size -= take;
  }
  return 0;
}
