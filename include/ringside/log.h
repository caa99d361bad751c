// Logging: one line per message on stderr, written with a single write() so lines from
// different threads never interleave (a write of less than PIPE_BUF bytes to a pipe is
// atomic; lines are capped well below it). Format:
//
//   2024-05-01T12:00:00.123Z warn  w0 upstream 10.0.0.7:15443 refused the connection
//
// The level is global and set once at start-up; a message above it costs one relaxed
// load. Formatting is printf-style (g++ 12 has no <format>). Control characters in the
// message (which may quote bytes a peer sent) are replaced so a message stays one line.
#pragma once

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>

namespace ringside::log {

enum class Level : uint8_t { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// "error" | "warn" | "info" | "debug"; nullopt for anything else.
std::optional<Level> parse_level(std::string_view text);
std::string_view to_string(Level level);

// The process-wide level: messages more verbose than it are dropped. Default kInfo.
void set_level(Level level);
Level level();
inline bool enabled(Level message_level);

// Names the calling thread in every line it logs ("w0", "ctl", "admin"); at most 15
// characters are kept. Also sets the kernel thread name (seen in top and gdb). A thread
// that never calls this logs under its kernel name.
void set_thread_name(std::string_view name);
// The calling thread's name as it appears in log lines.
std::string_view thread_name();

// Where lines go: stderr (fd 2) unless changed; for tests.
void set_output_fd(int fd);

// Formats and writes one line, whatever the level (callers use RS_LOG, which checks it).
void write(Level level, const char* format, ...) __attribute__((format(printf, 2, 3)));
void vwrite(Level level, const char* format, va_list args);

// The longest line written, newline included; longer messages are cut and end in "...".
inline constexpr size_t kMaxLineBytes = 2048;

// Limits one call site to `per_second` messages per second on the calling thread. The
// RS_LOG_RATE_LIMITED macro keeps one per call site per thread (thread_local), so using
// it needs no lock and no atomic: workers stay independent. When a message is allowed
// after some were dropped, the caller is told how many, and logs that first.
class RateLimiter {
 public:
  constexpr RateLimiter() = default;

  // Returns true if a message may be logged now. *suppressed_before is set to the
  // number of messages dropped since the last one allowed (0 if none).
  bool allow(uint32_t per_second, int64_t now_seconds, uint64_t* suppressed_before);
  // The same, reading CLOCK_MONOTONIC_COARSE.
  bool allow(uint32_t per_second, uint64_t* suppressed_before);

 private:
  int64_t window_second_ = -1;
  uint32_t allowed_in_window_ = 0;
  uint64_t suppressed_ = 0;
};

// ---- implementation details below ----

namespace detail {
extern std::atomic<uint8_t> g_level;
}  // namespace detail

inline bool enabled(Level message_level) {
  return static_cast<uint8_t>(message_level) <= detail::g_level.load(std::memory_order_relaxed);
}

}  // namespace ringside::log

// RS_LOG(ringside::log::Level::kWarn, "upstream %s refused", addr.c_str());
#define RS_LOG(level, ...)                                                           \
  do {                                                                               \
    if (::ringside::log::enabled(level)) ::ringside::log::write(level, __VA_ARGS__); \
  } while (0)

#define RS_ERROR(...) RS_LOG(::ringside::log::Level::kError, __VA_ARGS__)
#define RS_WARN(...) RS_LOG(::ringside::log::Level::kWarn, __VA_ARGS__)
#define RS_INFO(...) RS_LOG(::ringside::log::Level::kInfo, __VA_ARGS__)
#define RS_DEBUG(...) RS_LOG(::ringside::log::Level::kDebug, __VA_ARGS__)

// For messages a peer can trigger in a loop: at most per_second lines per second from
// this call site on this thread; then one "suppressed K messages" line when the site
// next logs.
#define RS_LOG_RATE_LIMITED(level, per_second, ...)                                             \
  do {                                                                                          \
    if (::ringside::log::enabled(level)) {                                                      \
      static thread_local ::ringside::log::RateLimiter rs_log_limiter_;                         \
      uint64_t rs_log_suppressed_ = 0;                                                          \
      if (rs_log_limiter_.allow((per_second), &rs_log_suppressed_)) {                           \
        if (rs_log_suppressed_ != 0) {                                                          \
          ::ringside::log::write(level, "suppressed %llu messages from %s:%d",                  \
                                 static_cast<unsigned long long>(rs_log_suppressed_), __FILE__, \
                                 __LINE__);                                                     \
        }                                                                                       \
        ::ringside::log::write(level, __VA_ARGS__);                                             \
      }                                                                                         \
    }                                                                                           \
  } while (0)
