#include "client.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <queue>
#include <thread>

#include "ringside/http.h"

namespace ringside::bench {

void ErrorCounts::merge(const ErrorCounts& other) {
  connect += other.connect;
  tls += other.tls;
  timeout += other.timeout;
  read += other.read;
  write += other.write;
  status += other.status;
  grpc += other.grpc;
}

void RunStats::merge(const RunStats& other) {
  requests += other.requests;
  bytes_read += other.bytes_read;
  bytes_written += other.bytes_written;
  connections += other.connections;
  handshakes += other.handshakes;
  resumed += other.resumed;
  payload_read += other.payload_read;
  payload_written += other.payload_written;
  for (size_t i = 0; i < 6; ++i) status_classes[i] += other.status_classes[i];
  for (int i = 0; i < kGrpcStatusSlots; ++i) grpc_status[i] += other.grpc_status[i];
  errors.merge(other.errors);
  latency.merge(other.latency);
  if (first_error.empty()) first_error = other.first_error;
}

namespace {

// A -H "Name: value" header (checked by main) as a field: the value without surrounding
// whitespace.
http::Field header_field(std::string_view header) {
  const size_t colon = header.find(':');
  std::string_view value = header.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return http::Field{header.substr(0, colon), value};
}

bool has_host_header(const ClientOptions& options) {
  for (const std::string& header : options.headers) {
    if (http::iequals(header_field(header).name, "host")) return true;
  }
  return false;
}

}  // namespace

std::string build_request(const ClientOptions& options) {
  std::string request = options.method + " " + options.url.target + " HTTP/1.1\r\n";
  const bool has_host = has_host_header(options);
  if (!has_host) request += "Host: " + options.url.host_header() + "\r\n";
  for (const std::string& header : options.headers) request += header + "\r\n";
  // A new connection per request: let the server close first, so TIME_WAIT stays there.
  if (options.mode == Mode::kHandshake) request += "Connection: close\r\n";
  request += "\r\n";
  return request;
}

H2Request build_h2_request(const ClientOptions& options) {
  H2Request request;
  request.grpc = !options.grpc_path.empty();
  const std::string authority = options.url.host_header();
  std::vector<http::Field> head;
  head.push_back({":method", request.grpc ? std::string_view("POST") : options.method});
  head.push_back({":scheme", options.url.tls ? "https" : "http"});
  // A Host header becomes :authority (to_http2_fields); else the URL's.
  if (!has_host_header(options)) head.push_back({":authority", authority});
  head.push_back({":path", request.grpc ? options.grpc_path : options.url.target});
  if (request.grpc) {
    head.push_back({"content-type", "application/grpc"});
    head.push_back({"te", "trailers"});
    request.body = grpc_frame(options.message_size);
  }
  for (const std::string& header : options.headers) head.push_back(header_field(header));
  http2::to_http2_fields(head, request.head);
  return request;
}

namespace {

constexpr size_t kReadBufferSize = 64 * 1024;
constexpr uint64_t kErrorBackoffNs = 10'000'000;  // before reconnecting after a failure
constexpr uint64_t kTimeoutScanNs = 50'000'000;   // how often request timeouts are checked

// Per-thread counters the progress reporter reads while the thread runs.
struct alignas(64) LiveCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
};

enum class ConnState : uint8_t {
  kClosed,       // no socket (waiting for a reconnect timer or the end)
  kConnecting,   // non-blocking connect in progress
  kHandshaking,  // TLS handshake in progress
  kIdle,         // connected, waiting for the next intended send time
  kAwaiting,     // request sent (or being sent), response not complete
  kHttp2,        // --h2: ready, streams come and go on it
  kStreaming,    // --mode tcp
};

struct Connection {
  int fd = -1;
  uint32_t index = 0;
  uint32_t serial = 0;  // bumped on close, so stale timers are ignored
  ConnState state = ConnState::kClosed;
  bool want_write = false;    // EPOLLOUT registered
  size_t request_offset = 0;  // bytes of the plain request already written
  uint64_t connect_start = 0;
  uint64_t latency_origin = 0;  // intended (open loop) or actual (closed loop) send time
  uint64_t deadline = 0;        // timeout of the current connect/handshake/request
  uint64_t next_intended = 0;   // open loop: when the next request is due
  http::ResponseParser parser;
  std::unique_ptr<TlsLink> tls;
  TlsResumeSlot resume;
  std::unique_ptr<H2Link> h2;  // --h2, once the connection is ready
  std::string h2_out;          // h2c: bytes the session produced, from h2_out_at not yet sent
  size_t h2_out_at = 0;
  uint64_t timer_due = 0;  // --h2 open loop: the schedule's timer is set for this time
};

struct Timer {
  uint64_t due;
  uint32_t index;
  uint32_t serial;
  bool operator>(const Timer& other) const { return due > other.due; }
};

std::string errno_text(int err) {
  switch (err) {
    case ECONNREFUSED:
      return "connection refused";
    case ECONNRESET:
      return "connection reset by peer";
    case ETIMEDOUT:
      return "timed out";
    case EHOSTUNREACH:
      return "host unreachable";
    case ENETUNREACH:
      return "network unreachable";
    default:
      return std::strerror(err);
  }
}

class Worker {
 public:
  Worker(const ClientOptions& options, unsigned thread_index, unsigned first_connection,
         unsigned connection_count, const std::string& request, const H2Request& h2_request,
         LiveCounters* live, const std::atomic<bool>* stop)
      : options_(options),
        thread_index_(thread_index),
        first_connection_(first_connection),
        request_(request),
        h2_request_(h2_request),
        live_(live),
        stop_(stop),
        connections_(connection_count) {}

  ~Worker() {
    for (Connection& conn : connections_) {
      if (conn.fd >= 0) close(conn.fd);
    }
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  RunStats& stats() { return stats_; }

  void run(uint64_t start, uint64_t end) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    read_buffer_.resize(kReadBufferSize);
    plain_buffer_.resize(kReadBufferSize);
    if (options_.mode == Mode::kTcp) write_block_.assign(options_.write_size, 'x');
    // The server's data is read and dropped at once: windows as large as h2load's do
    // not hold it back.
    h2_settings_.initial_stream_window = (1u << 30) - 1;
    h2_settings_.initial_connection_window = (1u << 30) - 1;
    end_ = end;
    head_method_ = options_.method == "HEAD";
    open_loop_ = options_.rate > 0 && options_.mode != Mode::kTcp;
    if (open_loop_) {
      interval_ns_ = static_cast<double>(options_.connections) / options_.rate * 1e9;
    }
    for (uint32_t i = 0; i < connections_.size(); ++i) {
      Connection& conn = connections_[i];
      conn.index = i;
      if (open_loop_) {
        // Stagger the schedules so the connections do not fire in bursts.
        double offset = interval_ns_ * (first_connection_ + i) / options_.connections;
        conn.next_intended = start + static_cast<uint64_t>(offset);
      }
      if (open_loop_ && options_.mode == Mode::kHandshake) {
        add_timer(conn, conn.next_intended);  // each new connection is a scheduled request
      } else {
        start_connect(conn, start);
      }
    }
    std::vector<epoll_event> events(512);
    uint64_t next_scan = start + kTimeoutScanNs;
    while (!stop_->load(std::memory_order_relaxed)) {
      uint64_t now = now_ns();
      if (now >= end_) break;
      uint64_t wake = std::min(end_, next_scan);
      if (!timers_.empty()) wake = std::min(wake, timers_.top().due);
      int n = wait_events(events, wake > now ? wake - now : 0);
      for (int i = 0; i < n; ++i) {
        const epoll_event& ev = events[static_cast<size_t>(i)];
        Connection& conn = connections_[ev.data.u32];
        if (conn.fd < 0) continue;
        uint32_t serial = conn.serial;
        if (ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
          on_readable(conn);
          if (conn.serial != serial || conn.fd < 0) continue;
        }
        if (ev.events & EPOLLOUT) on_writable(conn);
      }
      now = now_ns();
      while (!timers_.empty() && timers_.top().due <= now) {
        Timer timer = timers_.top();
        timers_.pop();
        Connection& conn = connections_[timer.index];
        if (conn.serial != timer.serial) continue;
        on_timer(conn, now);
      }
      if (now >= next_scan) {
        scan_timeouts(now);
        next_scan = now + kTimeoutScanNs;
      }
    }
  }

 private:
  // epoll_pwait2 takes a nanosecond timeout, which an open-loop schedule needs.
  int wait_events(std::vector<epoll_event>& events, uint64_t timeout_ns) {
    int capacity = static_cast<int>(events.size());
    if (have_pwait2_) {
      timespec timeout{static_cast<time_t>(timeout_ns / 1'000'000'000u),
                       static_cast<long>(timeout_ns % 1'000'000'000u)};
      int n = epoll_pwait2(epoll_fd_, events.data(), capacity, &timeout, nullptr);
      if (n >= 0 || errno != ENOSYS) return std::max(n, 0);
      have_pwait2_ = false;
    }
    return std::max(0, epoll_wait(epoll_fd_, events.data(), capacity,
                                  static_cast<int>((timeout_ns + 999'999) / 1'000'000)));
  }

  void note_error(uint64_t* counter, const char* kind, const std::string& detail) {
    ++*counter;
    live_->errors.store(stats_.errors.total(), std::memory_order_relaxed);
    if (stats_.first_error.empty()) stats_.first_error = std::string(kind) + ": " + detail;
  }

  void add_timer(Connection& conn, uint64_t due) {
    timers_.push(Timer{due, conn.index, conn.serial});
  }

  void set_want_write(Connection& conn, bool want) {
    if (conn.want_write == want) return;
    conn.want_write = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u32 = conn.index;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &ev);
  }

  void close_connection(Connection& conn) {
    if (conn.fd >= 0) close(conn.fd);
    conn.fd = -1;
    ++conn.serial;
    conn.state = ConnState::kClosed;
    conn.want_write = false;
    conn.tls.reset();
    conn.parser.reset();
    conn.h2.reset();
    conn.h2_out.clear();
    conn.h2_out_at = 0;
    conn.timer_due = 0;
  }

  // Closes and schedules a new connection (after a pause when it failed).
  void reconnect(Connection& conn, bool failed) {
    close_connection(conn);
    uint64_t now = now_ns();
    if (failed) {
      add_timer(conn, now + kErrorBackoffNs);
    } else {
      start_connect(conn, now);
    }
  }

  void start_connect(Connection& conn, uint64_t now) {
    const Endpoint& endpoint = options_.endpoint;
    int fd = socket(endpoint.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      note_error(&stats_.errors.connect, "connect", std::string("socket: ") + errno_text(errno));
      add_timer(conn, now + kErrorBackoffNs);
      return;
    }
    tune_stream_socket(fd);
    conn.fd = fd;
    conn.connect_start = now;
    conn.deadline = now + options_.timeout_ns;
    conn.request_offset = 0;
    int rc = ::connect(fd, endpoint.get(), endpoint.length);
    if (rc != 0 && errno != EINPROGRESS) {
      int err = errno;
      close_connection(conn);
      note_error(&stats_.errors.connect, "connect", errno_text(err));
      add_timer(conn, now + kErrorBackoffNs);
      return;
    }
    conn.state = ConnState::kConnecting;
    conn.want_write = true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = conn.index;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }

  void on_connected(Connection& conn) {
    ++stats_.connections;
    set_want_write(conn, false);
    if (options_.url.tls) {
      conn.tls = options_.tls->connect(thread_index_, options_.resume ? &conn.resume : nullptr);
      conn.state = ConnState::kHandshaking;
      drive_handshake(conn);
      return;
    }
    on_ready(conn);
  }

  // The connection can carry requests (TCP connected, TLS handshake done).
  void on_ready(Connection& conn) {
    uint64_t now = now_ns();
    if (options_.mode == Mode::kTcp) {
      conn.state = ConnState::kStreaming;
      set_want_write(conn, true);
      return;
    }
    if (options_.http2) {
      start_http2(conn, now);
      return;
    }
    if (options_.mode == Mode::kHandshake) {
      // The request rides on the connection that was opened for it.
      send_request(conn, open_loop_ ? conn.latency_origin : conn.connect_start);
      return;
    }
    if (open_loop_) {
      if (conn.next_intended <= now) {
        send_request(conn, conn.next_intended);
      } else {
        conn.state = ConnState::kIdle;
        add_timer(conn, conn.next_intended);
      }
      return;
    }
    send_request(conn, now);
  }

  void on_timer(Connection& conn, uint64_t now) {
    if (conn.state == ConnState::kHttp2) {
      if (conn.timer_due <= now) conn.timer_due = 0;
      http2_turn(conn);
    } else if (conn.state == ConnState::kIdle) {
      send_request(conn, conn.next_intended);
    } else if (conn.state == ConnState::kClosed) {
      // A scheduled new connection (handshake mode) or a reconnect after an error.
      if (open_loop_ && options_.mode == Mode::kHandshake) conn.latency_origin = conn.next_intended;
      start_connect(conn, now);
    }
  }

  void send_request(Connection& conn, uint64_t origin) {
    uint64_t now = now_ns();
    conn.latency_origin = origin;
    conn.deadline = now + options_.timeout_ns;
    conn.state = ConnState::kAwaiting;
    conn.parser.expect_response_to(head_method_ ? http::RequestKind::kHead
                                                : http::RequestKind::kOther);
    if (conn.tls) {
      auto data = reinterpret_cast<const uint8_t*>(request_.data());
      if (conn.tls->write(data, request_.size()) != TlsStep::kOk) {
        note_error(&stats_.errors.tls, "tls", conn.tls->error());
        reconnect(conn, true);
        return;
      }
      flush_tls(conn);
      return;
    }
    conn.request_offset = 0;
    send_plain(conn, request_, &conn.request_offset);
  }

  // Sends bytes from *offset on a plain connection. Returns false when the connection was
  // closed.
  bool send_plain(Connection& conn, const std::string& bytes, size_t* offset) {
    while (*offset < bytes.size()) {
      ssize_t n = ::send(conn.fd, bytes.data() + *offset, bytes.size() - *offset, MSG_NOSIGNAL);
      if (n > 0) {
        *offset += static_cast<size_t>(n);
        stats_.bytes_written += static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        set_want_write(conn, true);
        return true;
      }
      note_error(&stats_.errors.write, "write", errno_text(errno));
      reconnect(conn, true);
      return false;
    }
    set_want_write(conn, false);
    return true;
  }

  // Sends queued ciphertext. Returns false when the connection was closed.
  bool flush_tls(Connection& conn) {
    for (;;) {
      std::span<const uint8_t> pending = conn.tls->pending_output();
      if (pending.empty()) break;
      ssize_t n = ::send(conn.fd, pending.data(), pending.size(), MSG_NOSIGNAL);
      if (n > 0) {
        conn.tls->consume_output(static_cast<size_t>(n));
        stats_.bytes_written += static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        set_want_write(conn, true);
        return true;
      }
      note_error(&stats_.errors.write, "write", errno_text(errno));
      reconnect(conn, true);
      return false;
    }
    set_want_write(conn, conn.state == ConnState::kStreaming);
    return true;
  }

  void drive_handshake(Connection& conn) {
    TlsStep step = conn.tls->handshake();
    if (step == TlsStep::kError || step == TlsStep::kClosed) {
      note_error(&stats_.errors.tls, "tls", conn.tls->error());
      reconnect(conn, true);
      return;
    }
    if (!flush_tls(conn)) return;
    if (step == TlsStep::kOk) {
      ++stats_.handshakes;
      if (conn.tls->resumed()) ++stats_.resumed;
      on_ready(conn);
    }
  }

  void on_writable(Connection& conn) {
    switch (conn.state) {
      case ConnState::kConnecting: {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(conn.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          note_error(&stats_.errors.connect, "connect", errno_text(err));
          reconnect(conn, true);
          return;
        }
        on_connected(conn);
        return;
      }
      case ConnState::kStreaming:
        stream_out(conn);
        return;
      default:
        if (conn.tls) {
          flush_tls(conn);
        } else if (conn.state == ConnState::kAwaiting) {
          send_plain(conn, request_, &conn.request_offset);
        } else if (conn.state == ConnState::kHttp2) {
          flush_http2(conn);
        } else {
          set_want_write(conn, false);
        }
        return;
    }
  }

  void stream_out(Connection& conn) {
    for (int round = 0; round < 16; ++round) {
      if (conn.tls) {
        if (!conn.tls->pending_output().empty()) {
          if (!flush_tls(conn)) return;
          if (!conn.tls->pending_output().empty()) return;
        }
        auto data = reinterpret_cast<const uint8_t*>(write_block_.data());
        if (conn.tls->write(data, write_block_.size()) != TlsStep::kOk) {
          note_error(&stats_.errors.tls, "tls", conn.tls->error());
          reconnect(conn, true);
          return;
        }
        stats_.payload_written += write_block_.size();
        continue;
      }
      ssize_t n = ::send(conn.fd, write_block_.data(), write_block_.size(), MSG_NOSIGNAL);
      if (n > 0) {
        stats_.bytes_written += static_cast<uint64_t>(n);
        stats_.payload_written += static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      note_error(&stats_.errors.write, "write", errno_text(errno));
      reconnect(conn, true);
      return;
    }
  }

  void on_readable(Connection& conn) {
    if (conn.state == ConnState::kConnecting) {
      on_writable(conn);  // an error or the connect completion: SO_ERROR tells
      return;
    }
    uint32_t serial = conn.serial;
    for (int round = 0; round < 8; ++round) {
      ssize_t n = ::recv(conn.fd, read_buffer_.data(), read_buffer_.size(), 0);
      if (n > 0) {
        stats_.bytes_read += static_cast<uint64_t>(n);
        if (conn.tls) {
          on_ciphertext(conn, read_buffer_.data(), static_cast<size_t>(n));
        } else {
          on_plaintext(conn, read_buffer_.data(), static_cast<size_t>(n));
        }
        if (conn.serial != serial) return;
        if (static_cast<size_t>(n) < read_buffer_.size()) return;
        continue;
      }
      if (n == 0) {
        on_eof(conn);
        return;
      }
      if (errno == EAGAIN || errno == EINTR) return;
      int err = errno;
      if (conn.state == ConnState::kHandshaking) {
        note_error(&stats_.errors.tls, "tls", "handshake: " + errno_text(err));
      } else {
        note_error(&stats_.errors.read, "read", errno_text(err));
      }
      reconnect(conn, true);
      return;
    }
  }

  void on_ciphertext(Connection& conn, const uint8_t* data, size_t len) {
    uint32_t serial = conn.serial;
    conn.tls->set_input(data, len);
    if (conn.state == ConnState::kHandshaking) {
      drive_handshake(conn);
      if (conn.serial != serial || conn.state == ConnState::kHandshaking) return;
    }
    for (;;) {
      size_t n = 0;
      TlsStep step = conn.tls->read(plain_buffer_.data(), plain_buffer_.size(), &n);
      if (step == TlsStep::kOk) {
        on_plaintext(conn, plain_buffer_.data(), n);
        if (conn.serial != serial) return;
        continue;
      }
      if (step == TlsStep::kWantRead) break;
      if (step == TlsStep::kClosed) {
        on_eof(conn);
        return;
      }
      note_error(&stats_.errors.tls, "tls", conn.tls->error());
      reconnect(conn, true);
      return;
    }
    // Reading may have produced records to send (key updates, alerts).
    flush_tls(conn);
  }

  void on_plaintext(Connection& conn, const uint8_t* data, size_t len) {
    if (conn.state == ConnState::kStreaming) {
      stats_.payload_read += len;
      return;
    }
    if (conn.state == ConnState::kHttp2) {
      conn.h2->receive(std::span<const uint8_t>(data, len));
      http2_turn(conn);
      return;
    }
    std::string_view input(reinterpret_cast<const char*>(data), len);
    uint32_t serial = conn.serial;
    for (;;) {
      if (conn.state != ConnState::kAwaiting) {
        if (input.empty()) return;
        note_error(&stats_.errors.read, "read", "bytes received with no request outstanding");
        reconnect(conn, true);
        return;
      }
      http::Step step = conn.parser.parse(input);
      input.remove_prefix(step.consumed);
      switch (step.event) {
        case http::Event::kNeedMore:
          return;
        case http::Event::kHead:  // interim heads are skipped; the final one is read at the end
        case http::Event::kBody:
          continue;
        case http::Event::kMessageComplete:
          if (!on_response(conn) || conn.serial != serial) return;
          continue;
        case http::Event::kTunnel:
          note_error(&stats_.errors.read, "read", "the response switched protocols");
          reconnect(conn, true);
          return;
        case http::Event::kError:
          note_error(&stats_.errors.read, "read", std::string(conn.parser.error().reason));
          reconnect(conn, true);
          return;
      }
    }
  }

  // Counts a complete response to a request whose latency counts from origin. ok: the
  // status is a success (2xx; for gRPC, 200).
  void record_response(uint64_t origin, int code, bool ok, uint64_t now) {
    stats_.latency.record(now > origin ? now - origin : 0);
    ++stats_.requests;
    live_->requests.store(stats_.requests, std::memory_order_relaxed);
    if (code >= 100 && code < 600) ++stats_.status_classes[code / 100];
    if (!ok) note_error(&stats_.errors.status, "status", "HTTP " + std::to_string(code));
  }

  // Returns false when the connection was closed or replaced.
  bool on_response(Connection& conn) {
    uint64_t now = now_ns();
    int code = conn.parser.head().status;
    record_response(conn.latency_origin, code, code >= 200 && code < 300, now);
    if (open_loop_) conn.next_intended += static_cast<uint64_t>(interval_ns_);
    if (options_.mode == Mode::kHandshake) {
      if (conn.tls && options_.resume) conn.tls->save_session(&conn.resume);
      close_connection(conn);
      if (open_loop_ && conn.next_intended > now) {
        add_timer(conn, conn.next_intended);
      } else {
        if (open_loop_) conn.latency_origin = conn.next_intended;
        start_connect(conn, now);
      }
      return false;
    }
    if (!conn.parser.head().keep_alive) {
      reconnect(conn, false);
      return false;
    }
    if (open_loop_ && conn.next_intended > now) {
      conn.state = ConnState::kIdle;
      add_timer(conn, conn.next_intended);
      return true;
    }
    send_request(conn, open_loop_ ? conn.next_intended : now);
    return conn.fd >= 0;
  }

  void on_eof(Connection& conn) {
    if (conn.state == ConnState::kAwaiting) {
      if (conn.parser.finish().event == http::Event::kMessageComplete) {
        if (on_response(conn)) reconnect(conn, false);
        return;
      }
      note_error(&stats_.errors.read, "read", "connection closed before the response");
      reconnect(conn, true);
      return;
    }
    if (conn.state == ConnState::kHandshaking) {
      note_error(&stats_.errors.tls, "tls", "connection closed during the handshake");
      reconnect(conn, true);
      return;
    }
    if (conn.state == ConnState::kHttp2 && conn.h2->in_flight() > 0) {
      note_error(
          &stats_.errors.read, "read",
          "connection closed with " + std::to_string(conn.h2->in_flight()) + " streams open");
      reconnect(conn, true);
      return;
    }
    // An idle keep-alive connection closed by the server: just open another.
    reconnect(conn, false);
  }

  // ---- HTTP/2 (--h2, --grpc) ----

  void start_http2(Connection& conn, uint64_t now) {
    if (conn.tls && conn.tls->alpn() != "h2") {
      note_error(&stats_.errors.tls, "tls", "the server did not choose h2 with ALPN");
      reconnect(conn, true);
      return;
    }
    conn.h2 = std::make_unique<H2Link>(h2_request_, h2_settings_);
    conn.state = ConnState::kHttp2;
    start_streams(conn, now);
    flush_http2(conn);
  }

  // Opens streams up to -m: at once in a closed loop, as they fall due in an open loop.
  void start_streams(Connection& conn, uint64_t now) {
    H2Link& link = *conn.h2;
    if (!open_loop_) {
      while (link.in_flight() < options_.streams && link.start(now, now + options_.timeout_ns)) {
      }
      return;
    }
    while (link.in_flight() < options_.streams && conn.next_intended <= now &&
           link.start(conn.next_intended, now + options_.timeout_ns)) {
      conn.next_intended += static_cast<uint64_t>(interval_ns_);
    }
    // Requests due while every stream is busy go when one ends; a later one needs a timer.
    if (conn.next_intended > now && conn.timer_due != conn.next_intended) {
      conn.timer_due = conn.next_intended;
      add_timer(conn, conn.next_intended);
    }
  }

  // After input, a timer or timeouts: counts the streams that ended, opens the next ones
  // and sends what the session has.
  void http2_turn(Connection& conn) {
    H2Link& link = *conn.h2;
    uint64_t now = now_ns();
    for (const H2Outcome& outcome : link.finished()) record_http2(outcome, now);
    link.clear_finished();
    if (!link.failed()) {
      if (link.goaway_received() && link.in_flight() == 0) {
        reconnect(conn, false);
        return;
      }
      start_streams(conn, now);
    }
    // A failure shows in receive() or, when nghttp2 answers it with GOAWAY, in produce().
    if (!flush_http2(conn)) return;
    if (link.failed()) {
      note_error(&stats_.errors.read, "read", "HTTP/2: " + link.error());
      reconnect(conn, true);
    }
  }

  void record_http2(const H2Outcome& outcome, uint64_t now) {
    switch (outcome.kind) {
      case H2Outcome::Kind::kResponse:
        break;
      case H2Outcome::Kind::kReset:
        note_error(&stats_.errors.read, "read",
                   "stream reset (HTTP/2 error code " + std::to_string(outcome.code) + ")");
        return;
      case H2Outcome::Kind::kClosed:
        note_error(&stats_.errors.read, "read", "stream closed before its response ended");
        return;
    }
    const int code = outcome.status;
    if (!h2_request_.grpc) {
      record_response(outcome.origin, code, code >= 200 && code < 300, now);
      return;
    }
    record_response(outcome.origin, code, code == 200, now);
    if (code != 200) return;
    ++stats_.grpc_status[outcome.grpc_slot];
    if (outcome.grpc_slot != 0) {
      note_error(&stats_.errors.grpc, "grpc",
                 "grpc-status " + std::string(grpc_status_name(outcome.grpc_slot)));
    }
  }

  // Sends what the session produced. Returns false when the connection was closed.
  bool flush_http2(Connection& conn) {
    if (!conn.tls) {
      conn.h2->produce(conn.h2_out);
      if (!send_plain(conn, conn.h2_out, &conn.h2_out_at)) return false;
      if (conn.h2_out_at == conn.h2_out.size()) {
        conn.h2_out.clear();
        conn.h2_out_at = 0;
      }
      return true;
    }
    h2_scratch_.clear();
    conn.h2->produce(h2_scratch_);
    if (!h2_scratch_.empty() &&
        conn.tls->write(reinterpret_cast<const uint8_t*>(h2_scratch_.data()), h2_scratch_.size()) !=
            TlsStep::kOk) {
      note_error(&stats_.errors.tls, "tls", conn.tls->error());
      reconnect(conn, true);
      return false;
    }
    return flush_tls(conn);
  }

  void scan_timeouts(uint64_t now) {
    for (Connection& conn : connections_) {
      if (conn.state == ConnState::kHttp2) {
        // A stream that timed out is reset; the connection carries on.
        for (size_t n = conn.h2->cancel_expired(now); n > 0; --n) {
          note_error(&stats_.errors.timeout, "timeout", "no response");
        }
        http2_turn(conn);
        continue;
      }
      bool timed = conn.state == ConnState::kConnecting || conn.state == ConnState::kHandshaking ||
                   conn.state == ConnState::kAwaiting;
      if (timed && now > conn.deadline) {
        note_error(&stats_.errors.timeout, "timeout",
                   conn.state == ConnState::kAwaiting ? "no response" : "connect/handshake");
        // The request that timed out is an error, not a late sample: move on to the next.
        if (open_loop_) conn.next_intended += static_cast<uint64_t>(interval_ns_);
        reconnect(conn, false);
      }
    }
  }

  const ClientOptions& options_;
  unsigned thread_index_;
  unsigned first_connection_;
  const std::string& request_;
  const H2Request& h2_request_;
  http2::Settings h2_settings_;
  std::string h2_scratch_;  // plaintext the session produced, before TLS
  LiveCounters* live_;
  const std::atomic<bool>* stop_;
  std::vector<Connection> connections_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::vector<uint8_t> read_buffer_;
  std::vector<uint8_t> plain_buffer_;
  std::string write_block_;
  RunStats stats_;
  int epoll_fd_ = -1;
  bool have_pwait2_ = true;
  bool open_loop_ = false;
  bool head_method_ = false;
  double interval_ns_ = 0;
  uint64_t end_ = 0;
};

}  // namespace

bool preflight(const ClientOptions& options, std::string* error) {
  const Endpoint& endpoint = options.endpoint;
  std::string target = endpoint.to_string();
  int fd = socket(endpoint.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  auto fail = [&](const std::string& why) {
    close(fd);
    *error = why;
    return false;
  };
  int timeout_ms = static_cast<int>(std::min<uint64_t>(options.timeout_ns / 1'000'000, 60'000));
  if (::connect(fd, endpoint.get(), endpoint.length) != 0) {
    if (errno != EINPROGRESS) return fail("cannot connect to " + target + ": " + errno_text(errno));
    pollfd pfd{fd, POLLOUT, 0};
    if (poll(&pfd, 1, timeout_ms) != 1) return fail("cannot connect to " + target + ": timed out");
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail("cannot connect to " + target + ": " + errno_text(err));
  }
  if (!options.url.tls) {
    close(fd);
    return true;
  }
  std::unique_ptr<TlsLink> link = options.tls->connect(0, nullptr);
  std::vector<uint8_t> buffer(kReadBufferSize);
  uint64_t deadline = now_ns() + options.timeout_ns;
  for (;;) {
    TlsStep step = link->handshake();
    if (step == TlsStep::kError || step == TlsStep::kClosed) {
      return fail("TLS handshake with " + target + " failed: " + link->error());
    }
    for (auto out = link->pending_output(); !out.empty(); out = link->pending_output()) {
      ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        link->consume_output(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        pollfd pfd{fd, POLLOUT, 0};
        poll(&pfd, 1, 100);
        continue;
      }
      return fail("TLS handshake with " + target + " failed: " + errno_text(errno));
    }
    if (step == TlsStep::kOk) {
      if (options.http2 && link->alpn() != "h2") {
        return fail("TLS handshake with " + target + ": the server did not choose h2 with ALPN" +
                    (link->alpn().empty() ? std::string(" (none chosen)")
                                          : " (chose '" + std::string(link->alpn()) + "')"));
      }
      break;
    }
    uint64_t now = now_ns();
    if (now >= deadline) return fail("TLS handshake with " + target + " failed: timed out");
    pollfd pfd{fd, POLLIN, 0};
    poll(&pfd, 1, static_cast<int>((deadline - now) / 1'000'000 + 1));
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n == 0) {
      return fail("TLS handshake with " + target + " failed: connection closed by the server");
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail("TLS handshake with " + target + " failed: " + errno_text(errno));
    }
    link->set_input(buffer.data(), static_cast<size_t>(n));
  }
  link->shutdown();
  for (auto out = link->pending_output(); !out.empty(); out = link->pending_output()) {
    ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    link->consume_output(static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

RunResult run_client(const ClientOptions& options, const std::atomic<bool>* stop) {
  std::string request = build_request(options);
  H2Request h2_request;
  if (options.http2) h2_request = build_h2_request(options);
  unsigned threads = std::max(1u, std::min(options.threads, options.connections));
  std::vector<LiveCounters> live(threads);
  std::vector<std::unique_ptr<Worker>> workers;
  unsigned first = 0;
  for (unsigned t = 0; t < threads; ++t) {
    unsigned count = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    workers.push_back(
        std::make_unique<Worker>(options, t, first, count, request, h2_request, &live[t], stop));
    first += count;
  }
  uint64_t start = now_ns();
  uint64_t end = start + options.duration_ns;
  std::vector<std::thread> running;
  for (auto& worker : workers) {
    running.emplace_back([&worker, start, end] { worker->run(start, end); });
  }

  RunResult result;
  // The progress reporter: one line per second, only when asked (stdout is a terminal).
  uint64_t last_requests = 0;
  uint64_t next_report = start + 1'000'000'000;
  while (now_ns() < end && !stop->load(std::memory_order_relaxed)) {
    uint64_t now = now_ns();
    uint64_t sleep_until = std::min(end, next_report);
    if (sleep_until > now) {
      uint64_t nap = std::min<uint64_t>(sleep_until - now, 100'000'000);
      std::this_thread::sleep_for(std::chrono::nanoseconds(nap));
      continue;
    }
    if (options.live_progress) {
      uint64_t requests = 0;
      uint64_t errors = 0;
      for (const LiveCounters& counters : live) {
        requests += counters.requests.load(std::memory_order_relaxed);
        errors += counters.errors.load(std::memory_order_relaxed);
      }
      std::printf("  %3.0fs  %12llu requests  %10llu/s  %llu errors\n",
                  static_cast<double>(now - start) / 1e9, static_cast<unsigned long long>(requests),
                  static_cast<unsigned long long>(requests - last_requests),
                  static_cast<unsigned long long>(errors));
      std::fflush(stdout);
      last_requests = requests;
    }
    next_report += 1'000'000'000;
  }
  for (auto& thread : running) thread.join();
  uint64_t finish = now_ns();
  result.interrupted = stop->load(std::memory_order_relaxed) && finish < end;
  result.elapsed_s = static_cast<double>(finish - start) / 1e9;
  for (auto& worker : workers) result.stats.merge(worker->stats());
  return result;
}

}  // namespace ringside::bench
