// Access log lines (text and JSON), the per-worker SPSC ring and the writer thread.
#include "ringside/access_log.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "ringside/log.h"

namespace ringside::http {
namespace {

void append_number(std::string& out, uint64_t value) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, static_cast<size_t>(result.ptr - digits));
}

void append_padded(std::string& out, unsigned value, int width) {
  char digits[8];
  for (int i = width - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(digits, static_cast<size_t>(width));
}

constexpr char kHex[] = "0123456789abcdef";

// Text log: printable ASCII kept except '"' and '\'; everything else as \xNN.
void append_text_escaped(std::string_view s, std::string& out) {
  if (s.empty()) {
    out += '-';
    return;
  }
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0x0f];
    }
  }
}

void append_quoted_text(std::string_view s, std::string& out) {
  out += '"';
  append_text_escaped(s, out);
  out += '"';
}

std::string_view logged_path(std::string_view path, bool log_query) {
  return log_query ? path : path.substr(0, path.find('?'));
}

// JSON members: ,"key":"value" or ,"key":null for empty strings.
void json_string(std::string& out, std::string_view key, std::string_view value,
                 bool first = false) {
  if (!first) out += ',';
  out += '"';
  out += key;
  out += "\":";
  if (value.empty()) {
    out += "null";
    return;
  }
  out += '"';
  append_json_escaped(value, out);
  out += '"';
}

void json_number(std::string& out, std::string_view key, uint64_t value) {
  out += ",\"";
  out += key;
  out += "\":";
  append_number(out, value);
}

// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

}  // namespace

void append_response_flags(uint32_t flags, std::string& out) {
  static constexpr std::string_view kNames[] = {"UH", "UF",  "URX", "UT", "UC", "UPE",
                                                "DC", "DPE", "SI",  "LR", "RL", "NR"};
  if (flags == 0) {
    out += '-';
    return;
  }
  bool first = true;
  for (size_t bit = 0; bit < std::size(kNames); ++bit) {
    if ((flags & (1u << bit)) == 0) continue;
    if (!first) out += ',';
    out += kNames[bit];
    first = false;
  }
}

uint32_t response_flag_for(LocalCause cause) {
  switch (cause) {
    case LocalCause::kBadRequest:
    case LocalCause::kPayloadTooLarge:
    case LocalCause::kUriTooLong:
    case LocalCause::kHeaderTooLarge:
    case LocalCause::kNotImplemented:
    case LocalCause::kVersionNotSupported:
      return kFlagDownstreamProtocolError;
    case LocalCause::kRequestHeaderTimeout:
      return kFlagStreamIdleTimeout;
    case LocalCause::kUpstreamConnectFailure:
    case LocalCause::kUpstreamConnectTimeout:
    case LocalCause::kUpstreamTlsFailure:
      return kFlagUpstreamConnectFailure;
    case LocalCause::kNoHealthyUpstream:
      return kFlagNoHealthyUpstream;
    case LocalCause::kUpstreamReset:
      return kFlagUpstreamConnectionTermination;
    case LocalCause::kUpstreamProtocolError:
      return kFlagUpstreamProtocolError;
    case LocalCause::kRequestTimeout:
      return kFlagUpstreamRequestTimeout;
  }
  return 0;
}

void append_json_escaped(std::string_view s, std::string& out) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u >= 0x20 && u < 0x7f) {
          out += c;
        } else {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0x0f];
        }
    }
  }
}

void append_utc_timestamp(std::chrono::system_clock::time_point t, std::string& out) {
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  int64_t days = ms / 86'400'000;
  int64_t in_day = ms % 86'400'000;
  if (in_day < 0) {
    in_day += 86'400'000;
    --days;
  }
  int64_t year = 0;
  unsigned month = 0, day = 0;
  civil_from_days(days, year, month, day);
  append_padded(out, static_cast<unsigned>(year), 4);
  out += '-';
  append_padded(out, month, 2);
  out += '-';
  append_padded(out, day, 2);
  out += 'T';
  append_padded(out, static_cast<unsigned>(in_day / 3'600'000), 2);
  out += ':';
  append_padded(out, static_cast<unsigned>(in_day / 60'000 % 60), 2);
  out += ':';
  append_padded(out, static_cast<unsigned>(in_day / 1000 % 60), 2);
  out += '.';
  append_padded(out, static_cast<unsigned>(in_day % 1000), 3);
  out += 'Z';
}

void format_access_log_text(const AccessLogEntry& e, bool log_query, std::string& out) {
  out += '[';
  append_utc_timestamp(e.start_time, out);
  out += "] \"";
  append_text_escaped(e.method, out);
  out += ' ';
  append_text_escaped(logged_path(e.path, log_query), out);
  out += ' ';
  append_text_escaped(e.protocol, out);
  out += "\" ";
  append_number(out, e.status);
  out += ' ';
  append_response_flags(e.response_flags, out);
  out += ' ';
  append_number(out, e.bytes_received);
  out += ' ';
  append_number(out, e.bytes_sent);
  out += ' ';
  append_number(out, e.duration_ms);
  out += ' ';
  if (e.upstream_service_time_ms >= 0) {
    append_number(out, static_cast<uint64_t>(e.upstream_service_time_ms));
  } else {
    out += '-';
  }
  out += ' ';
  append_quoted_text(e.request_id, out);
  out += ' ';
  append_quoted_text(e.authority, out);
  out += ' ';
  append_quoted_text(e.user_agent, out);
  out += ' ';
  append_quoted_text(e.upstream_address, out);
  out += ' ';
  append_text_escaped(e.upstream_service, out);
  out += ' ';
  append_number(out, e.retry_count);
  out += ' ';
  append_text_escaped(e.listener, out);
  out += ' ';
  append_text_escaped(e.downstream_address, out);
  out += ' ';
  append_quoted_text(e.details, out);
  out += ' ';
  if (e.grpc_status >= 0) {
    append_number(out, static_cast<uint64_t>(e.grpc_status));
  } else {
    out += '-';
  }
  out += e.downstream_tls > 0 ? " tls " : e.downstream_tls == 0 ? " plaintext " : " - ";
  append_quoted_text(e.peer_identity, out);
  out += ' ';
  if (e.authz.empty()) {
    out += '-';
  } else {
    append_text_escaped(e.authz, out);
  }
  out += '\n';
}

void format_access_log_json(const AccessLogEntry& e, bool log_query, std::string& out) {
  out += "{\"start_time\":\"";
  append_utc_timestamp(e.start_time, out);
  out += '"';
  json_string(out, "method", e.method);
  json_string(out, "path", logged_path(e.path, log_query));
  json_string(out, "protocol", e.protocol);
  json_number(out, "response_code", e.status);
  out += ",\"response_flags\":\"";
  append_response_flags(e.response_flags, out);
  out += '"';
  json_string(out, "details", e.details);
  json_number(out, "bytes_received", e.bytes_received);
  json_number(out, "bytes_sent", e.bytes_sent);
  json_number(out, "duration_ms", e.duration_ms);
  if (e.upstream_service_time_ms >= 0) {
    json_number(out, "upstream_service_time_ms", static_cast<uint64_t>(e.upstream_service_time_ms));
  } else {
    out += ",\"upstream_service_time_ms\":null";
  }
  json_string(out, "upstream_host", e.upstream_address);
  json_string(out, "upstream_service", e.upstream_service);
  json_number(out, "retry_count", e.retry_count);
  json_string(out, "request_id", e.request_id);
  json_string(out, "authority", e.authority);
  json_string(out, "user_agent", e.user_agent);
  json_string(out, "listener", e.listener);
  json_string(out, "downstream_remote_address", e.downstream_address);
  if (e.grpc_status >= 0) {
    json_number(out, "grpc_status", static_cast<uint64_t>(e.grpc_status));
  } else {
    out += ",\"grpc_status\":null";
  }
  out += e.downstream_tls > 0    ? ",\"downstream_tls\":true"
         : e.downstream_tls == 0 ? ",\"downstream_tls\":false"
                                 : ",\"downstream_tls\":null";
  json_string(out, "peer_identity", e.peer_identity);
  json_string(out, "authz", e.authz);
  out += "}\n";
}

// ---- ring -------------------------------------------------------------------------------

namespace {
size_t round_up_pow2(size_t n) {
  size_t p = 64;
  while (p < n) p <<= 1;
  return p;
}
}  // namespace

AccessLogRing::AccessLogRing(size_t capacity)
    : data_(new char[round_up_pow2(capacity)]), mask_(round_up_pow2(capacity) - 1) {}

bool AccessLogRing::push(std::string_view line) {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  if (line.size() > capacity() - (head - tail)) {
    dropped_.add();
    return false;
  }
  const size_t at = static_cast<size_t>(head) & mask_;
  const size_t first = std::min(line.size(), capacity() - at);
  std::memcpy(data_.get() + at, line.data(), first);
  std::memcpy(data_.get(), line.data() + first, line.size() - first);
  head_.store(head + line.size(), std::memory_order_release);
  pushed_.add();
  return true;
}

AccessLogRing::Readable AccessLogRing::readable() const {
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  const size_t size = static_cast<size_t>(head - tail);
  const size_t at = static_cast<size_t>(tail) & mask_;
  const size_t first = std::min(size, capacity() - at);
  return {{data_.get() + at, first}, {data_.get(), size - first}};
}

void AccessLogRing::release(size_t n) {
  tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

bool AccessLogger::log(const AccessLogEntry& entry) {
  scratch_.clear();
  if (format_ == AccessLogFormat::kJson) {
    format_access_log_json(entry, log_query_, scratch_);
  } else {
    format_access_log_text(entry, log_query_, scratch_);
  }
  return ring_->push(scratch_);
}

// ---- writer -------------------------------------------------------------------------------

namespace {
int open_log(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}
}  // namespace

Result<std::unique_ptr<AccessLogWriter>> AccessLogWriter::open(const std::string& path,
                                                               unsigned workers,
                                                               const Options& options,
                                                               std::string* detail) {
  int fd = STDOUT_FILENO;
  if (path != "-") {
    fd = open_log(path);
    if (fd < 0) {
      const int err = errno;
      if (detail != nullptr) *detail = "access log '" + path + "': " + std::strerror(err);
      return make_error(ErrorKind::kIo, Side::kInternal, "cannot open the access log", err);
    }
  }
  return std::unique_ptr<AccessLogWriter>(new AccessLogWriter(path, fd, workers, options));
}

AccessLogWriter::AccessLogWriter(std::string path, int fd, unsigned workers, const Options& options)
    : path_(std::move(path)), fd_(fd), owns_fd_(path_ != "-"), options_(options) {
  for (unsigned w = 0; w < workers; ++w) {
    rings_.push_back(std::make_unique<AccessLogRing>(options_.ring_bytes));
  }
  thread_ = std::thread([this] { run(); });
}

AccessLogWriter::~AccessLogWriter() {
  stop();
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

uint64_t AccessLogWriter::lines_dropped() const {
  uint64_t total = 0;
  for (const auto& ring : rings_) total += ring->dropped();
  return total;
}

void AccessLogWriter::reopen_file() {
  if (!owns_fd_) return;
  const int fd = open_log(path_);
  if (fd < 0) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    RS_WARN("access log: cannot reopen '%s': %s; still writing to the old file", path_.c_str(),
            std::strerror(errno));
    return;
  }
  ::close(fd_);
  fd_ = fd;
}

void AccessLogWriter::drain_all() {
  std::lock_guard<std::mutex> lock(drain_mutex_);
  if (reopen_.exchange(false, std::memory_order_relaxed)) reopen_file();
  for (const auto& ring : rings_) {
    AccessLogRing::Readable bytes = ring->readable();
    while (bytes.size() > 0) {
      iovec iov[2] = {{const_cast<char*>(bytes.first.data()), bytes.first.size()},
                      {const_cast<char*>(bytes.second.data()), bytes.second.size()}};
      const ssize_t n = ::writev(fd_, iov, bytes.second.empty() ? 1 : 2);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // A full disk or a closed stdout: drop what is buffered rather than spin on it.
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        ring->release(bytes.size());
        break;
      }
      bytes_written_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      ring->release(static_cast<size_t>(n));
      bytes = ring->readable();
    }
  }
}

void AccessLogWriter::flush() { drain_all(); }

void AccessLogWriter::run() {
  log::set_thread_name("accesslog");
  std::unique_lock<std::mutex> lock(wake_mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.flush_interval, [this] { return stopping_; });
    lock.unlock();
    drain_all();
    lock.lock();
  }
}

void AccessLogWriter::stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  drain_all();
}

}  // namespace ringside::http
