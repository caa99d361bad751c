#include "ringside/log.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ringside::log {

namespace detail {
std::atomic<uint8_t> g_level{static_cast<uint8_t>(Level::kInfo)};
}  // namespace detail

namespace {

std::atomic<int> g_output_fd{STDERR_FILENO};

// 15 characters plus the terminator: the kernel's limit for thread names too.
thread_local char t_thread_name[16] = {};

const char* level_column(Level level) {
  // Padded to one width so messages line up.
  switch (level) {
    case Level::kError:
      return "error";
    case Level::kWarn:
      return "warn ";
    case Level::kInfo:
      return "info ";
    case Level::kDebug:
      return "debug";
  }
  return "?    ";
}

}  // namespace

std::optional<Level> parse_level(std::string_view text) {
  if (text == "error") return Level::kError;
  if (text == "warn") return Level::kWarn;
  if (text == "info") return Level::kInfo;
  if (text == "debug") return Level::kDebug;
  return std::nullopt;
}

std::string_view to_string(Level level) {
  switch (level) {
    case Level::kError:
      return "error";
    case Level::kWarn:
      return "warn";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
  }
  return "unknown";
}

void set_level(Level level) {
  detail::g_level.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
}

Level level() { return static_cast<Level>(detail::g_level.load(std::memory_order_relaxed)); }

void set_thread_name(std::string_view name) {
  const size_t n = std::min(name.size(), sizeof(t_thread_name) - 1);
  std::memcpy(t_thread_name, name.data(), n);
  t_thread_name[n] = '\0';
  pthread_setname_np(pthread_self(), t_thread_name);
}

std::string_view thread_name() {
  if (t_thread_name[0] == '\0' &&
      pthread_getname_np(pthread_self(), t_thread_name, sizeof(t_thread_name)) != 0) {
    std::strcpy(t_thread_name, "?");
  }
  return t_thread_name;
}

void set_output_fd(int fd) { g_output_fd.store(fd, std::memory_order_relaxed); }

void write(Level level, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vwrite(level, format, args);
  va_end(args);
}

void vwrite(Level level, const char* format, va_list args) {
  const int saved_errno = errno;  // callers often log right before reading errno
  char line[kMaxLineBytes];

  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  int used =
      std::snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                    utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                    utc.tm_sec, now.tv_nsec / 1000000, level_column(level), thread_name().data());
  if (used < 0) used = 0;
  const size_t prefix = static_cast<size_t>(used);

  // Room for the message: everything but the prefix and the newline.
  const size_t room = sizeof(line) - prefix - 1;
  const int wanted = std::vsnprintf(line + prefix, room, format, args);
  size_t message = wanted < 0 ? 0 : static_cast<size_t>(wanted);
  if (message >= room) {
    message = room - 1;  // vsnprintf kept room-1 characters plus a terminator
    std::memcpy(line + prefix + message - 3, "...", 3);
  }
  // A trailing newline the caller added out of habit is dropped, not shown as '?'.
  if (message > 0 && line[prefix + message - 1] == '\n') --message;
  for (size_t i = prefix; i < prefix + message; ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c == 0x7f) line[i] = (c == '\t') ? ' ' : '?';
  }
  line[prefix + message] = '\n';
  const size_t total = prefix + message + 1;

  // One write(): lines from different threads never interleave. A short write (full
  // pipe, signal) is retried for the rest; there is nothing better to do with a log line.
  size_t written = 0;
  const int fd = g_output_fd.load(std::memory_order_relaxed);
  while (written < total) {
    const ssize_t n = ::write(fd, line + written, total - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  errno = saved_errno;
}

bool RateLimiter::allow(uint32_t per_second, int64_t now_seconds, uint64_t* suppressed_before) {
  *suppressed_before = 0;
  if (now_seconds != window_second_) {
    window_second_ = now_seconds;
    allowed_in_window_ = 0;
  }
  if (allowed_in_window_ >= per_second) {
    ++suppressed_;
    return false;
  }
  ++allowed_in_window_;
  *suppressed_before = suppressed_;
  suppressed_ = 0;
  return true;
}

bool RateLimiter::allow(uint32_t per_second, uint64_t* suppressed_before) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return allow(per_second, static_cast<int64_t>(now.tv_sec), suppressed_before);
}

}  // namespace ringside::log
