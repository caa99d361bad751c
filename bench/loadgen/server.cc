#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "common.h"
#include "grpc_echo.h"

namespace ringside::bench {

namespace {

constexpr size_t kReadSize = 64 * 1024;
// Above this much unsent output a connection stops reading (back-pressure against a
// client that pipelines or echoes faster than it reads).
constexpr size_t kOutputLimit = 1024 * 1024;
constexpr size_t kMaxHeaderBytes = 64 * 1024;

bool iequals_prefix(std::string_view line, std::string_view lower_prefix) {
  if (line.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = line[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// What the hello server needs to know about one request head.
struct RequestHead {
  size_t head_length = 0;    // bytes up to and including the blank line
  uint64_t body_length = 0;  // Content-Length
  bool close = false;        // Connection: close, or HTTP/1.0 without keep-alive
  bool bad = false;          // malformed or unsupported (chunked request body)
};

// Parses the head at the start of data; head_length stays 0 while it is incomplete.
RequestHead parse_request_head(std::string_view data) {
  RequestHead head;
  size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (data.size() > kMaxHeaderBytes) head.bad = true;
    return head;
  }
  head.head_length = end + 4;
  std::string_view lines = data.substr(0, end + 2);
  size_t eol = lines.find("\r\n");
  std::string_view request_line = lines.substr(0, eol);
  bool http10 = request_line.ends_with("HTTP/1.0");
  if (!http10 && !request_line.ends_with("HTTP/1.1")) head.bad = true;
  bool keep_alive = false;
  lines.remove_prefix(eol + 2);
  while (!lines.empty()) {
    eol = lines.find("\r\n");
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol + 2);
    if (line.empty() || (line[0] | 0x20) != 'c') {
      if (!line.empty() && (line[0] | 0x20) == 't' && iequals_prefix(line, "transfer-encoding:")) {
        head.bad = true;  // chunked request bodies are not needed by any benchmark
      }
      continue;
    }
    if (iequals_prefix(line, "content-length:")) {
      std::string_view value = trim(line.substr(15));
      uint64_t length = 0;
      for (char c : value) {
        if (c < '0' || c > '9') {
          head.bad = true;
          break;
        }
        length = length * 10 + static_cast<uint64_t>(c - '0');
      }
      head.body_length = length;
    } else if (iequals_prefix(line, "connection:")) {
      std::string_view value = trim(line.substr(11));
      if (iequals_prefix(value, "close")) head.close = true;
      if (iequals_prefix(value, "keep-alive")) keep_alive = true;
    }
  }
  if (http10 && !keep_alive) head.close = true;
  return head;
}

struct Shared {
  const ServeOptions* options;
  std::string response;
  std::string bad_request;
  http2::Settings http2;  // --grpc
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> stall_until_ns{0};
  const std::atomic<bool>* stop;
};

struct Connection {
  int fd = -1;
  uint64_t serial = 0;
  std::string input;          // unparsed request bytes
  uint64_t body_to_skip = 0;  // request body bytes still to discard
  std::string output;         // bytes accepted but not yet written
  size_t output_offset = 0;
  size_t delayed = 0;  // responses waiting in the delay queue
  bool read_eof = false;
  bool closing = false;  // the client asked to close: read nothing more
  bool close_after_output = false;
  bool reading = true;
  bool writing = false;
  std::unique_ptr<GrpcEcho> grpc;  // --grpc: the connection's HTTP/2 session
};

struct DelayedResponse {
  int fd;
  uint64_t serial;
  uint64_t due_ns;
  bool close;
};

class ServerThread {
 public:
  ServerThread(Shared* shared, int listen_fd) : shared_(shared), listen_fd_(listen_fd) {}
  ~ServerThread() {
    for (auto& conn : connections_) {
      if (conn) close(conn->fd);
    }
    if (epoll_fd_ >= 0) close(epoll_fd_);
    close(listen_fd_);
  }

  void run() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    std::vector<epoll_event> events(256);
    read_buffer_.resize(kReadSize);
    const ServeOptions& options = *shared_->options;
    timed_ = options.delay_ns > 0 || options.stall_after > 0;
    while (!shared_->stop->load(std::memory_order_relaxed)) {
      uint64_t timeout_ns = 100'000'000;
      if (!delayed_.empty()) {
        uint64_t now = now_ns();
        uint64_t due = delayed_.front().due_ns;
        timeout_ns = due <= now ? 0 : std::min(due - now, timeout_ns);
      }
      int n = wait_events(events, timeout_ns);
      for (int i = 0; i < n; ++i) {
        int fd = events[static_cast<size_t>(i)].data.fd;
        if (fd == listen_fd_) {
          accept_all();
          continue;
        }
        Connection* conn = lookup(fd);
        if (conn == nullptr) continue;
        uint32_t what = events[static_cast<size_t>(i)].events;
        if (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
          if (!on_readable(conn)) continue;
        }
        if ((what & EPOLLOUT) && conn->writing) flush(conn);
      }
      if (!delayed_.empty()) release_due();
    }
  }

 private:
  // epoll_pwait2 takes a nanosecond timeout, so --delay is honoured to the microsecond
  // rather than rounded up to the next millisecond; older kernels fall back to epoll_wait.
  int wait_events(std::vector<epoll_event>& events, uint64_t timeout_ns) {
    int capacity = static_cast<int>(events.size());
    if (have_pwait2_) {
      timespec timeout{static_cast<time_t>(timeout_ns / 1'000'000'000u),
                       static_cast<long>(timeout_ns % 1'000'000'000u)};
      int n = epoll_pwait2(epoll_fd_, events.data(), capacity, &timeout, nullptr);
      if (n >= 0 || errno != ENOSYS) return n;
      have_pwait2_ = false;
    }
    return epoll_wait(epoll_fd_, events.data(), capacity,
                      static_cast<int>((timeout_ns + 999'999) / 1'000'000));
  }

  Connection* lookup(int fd) {
    size_t index = static_cast<size_t>(fd);
    return index < connections_.size() ? connections_[index].get() : nullptr;
  }

  void accept_all() {
    for (;;) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error such as EMFILE
      tune_stream_socket(fd);
      size_t index = static_cast<size_t>(fd);
      if (connections_.size() <= index) connections_.resize(index + 1);
      auto conn = std::make_unique<Connection>();
      conn->fd = fd;
      conn->serial = ++serial_;
      if (shared_->options->grpc) {
        conn->grpc = std::make_unique<GrpcEcho>(shared_->http2);
        conn->grpc->produce(conn->output);  // our SETTINGS, sent with the first answer
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
      connections_[index] = std::move(conn);
    }
  }

  void update_interest(Connection* conn) {
    epoll_event ev{};
    ev.events = (conn->reading ? EPOLLIN : 0u) | (conn->writing ? EPOLLOUT : 0u);
    ev.data.fd = conn->fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn->fd, &ev);
  }

  void destroy(Connection* conn) {
    int fd = conn->fd;
    close(fd);
    connections_[static_cast<size_t>(fd)].reset();
  }

  // Returns false when the connection was destroyed.
  bool on_readable(Connection* conn) {
    for (int round = 0; round < 4; ++round) {
      ssize_t n = read(conn->fd, read_buffer_.data(), read_buffer_.size());
      if (n > 0) {
        std::string_view data(read_buffer_.data(), static_cast<size_t>(n));
        bool alive = conn->grpc               ? on_grpc_data(conn, data)
                     : shared_->options->echo ? on_echo_data(conn, data)
                                              : on_http_data(conn, data);
        if (!alive) return false;
        if (!conn->reading || static_cast<size_t>(n) < read_buffer_.size()) break;
        continue;
      }
      if (n == 0) {
        conn->read_eof = true;
        conn->reading = false;
        return finish_if_done(conn);
      }
      if (errno == EAGAIN || errno == EINTR) break;
      destroy(conn);  // ECONNRESET and friends
      return false;
    }
    return true;
  }

  // After EOF: close once everything owed to the peer has been written.
  bool finish_if_done(Connection* conn) {
    if (conn->output.size() > conn->output_offset || conn->delayed > 0) {
      update_interest(conn);
      return true;
    }
    if (shared_->options->echo && conn->read_eof) {
      shutdown(conn->fd, SHUT_WR);  // relay the half-close, then we are done
    }
    destroy(conn);
    return false;
  }

  bool on_echo_data(Connection* conn, std::string_view data) {
    conn->output.append(data);
    return flush(conn);
  }

  bool on_grpc_data(Connection* conn, std::string_view data) {
    GrpcEcho& session = *conn->grpc;
    session.receive(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
    session.produce(conn->output);
    if (session.finished()) {
      // A connection error (GOAWAY queued) or a finished GOAWAY exchange: write, then close.
      conn->closing = true;
      conn->close_after_output = true;
    }
    return flush(conn);
  }

  bool on_http_data(Connection* conn, std::string_view data) {
    if (conn->body_to_skip > 0) {
      size_t skip = static_cast<size_t>(std::min<uint64_t>(conn->body_to_skip, data.size()));
      conn->body_to_skip -= skip;
      data.remove_prefix(skip);
    }
    std::string_view pending = data;
    if (!conn->input.empty()) {
      conn->input.append(data);
      pending = conn->input;
    }
    size_t consumed = 0;
    bool close_now = false;
    while (consumed < pending.size() && !conn->closing) {
      RequestHead head = parse_request_head(pending.substr(consumed));
      if (head.bad) {
        conn->output.append(shared_->bad_request);
        conn->close_after_output = true;
        conn->closing = true;
        close_now = true;
        break;
      }
      if (head.head_length == 0) break;
      consumed += head.head_length;
      uint64_t body_here = std::min<uint64_t>(head.body_length, pending.size() - consumed);
      consumed += static_cast<size_t>(body_here);
      conn->body_to_skip = head.body_length - body_here;
      respond(conn, head.close);
      if (head.close) {
        conn->closing = true;
        close_now = true;
        break;
      }
      if (conn->body_to_skip > 0) break;
    }
    if (close_now) consumed = pending.size();
    if (conn->input.empty()) {
      conn->input.assign(pending.substr(consumed));
    } else {
      conn->input.erase(0, consumed);
    }
    return flush(conn);
  }

  void respond(Connection* conn, bool close_after) {
    if (!timed_) {
      conn->output.append(shared_->response);
      if (close_after) conn->close_after_output = true;
      return;
    }
    const ServeOptions& options = *shared_->options;
    uint64_t now = now_ns();
    uint64_t due = now + options.delay_ns;
    if (options.stall_after > 0) {
      uint64_t count = shared_->requests.fetch_add(1, std::memory_order_relaxed) + 1;
      if (count == options.stall_after) {
        shared_->stall_until_ns.store(now + options.stall_for_ns, std::memory_order_relaxed);
        std::fprintf(stderr, "ringside-bench serve: stalling for %s after %llu requests\n",
                     format_duration_ns(static_cast<double>(options.stall_for_ns)).c_str(),
                     static_cast<unsigned long long>(count));
      }
      due = std::max(due, shared_->stall_until_ns.load(std::memory_order_relaxed));
    }
    if (due <= now && conn->delayed == 0) {
      conn->output.append(shared_->response);
      if (close_after) conn->close_after_output = true;
      return;
    }
    ++conn->delayed;
    delayed_.push_back(DelayedResponse{conn->fd, conn->serial, due, close_after});
  }

  void release_due() {
    uint64_t now = now_ns();
    while (!delayed_.empty() && delayed_.front().due_ns <= now) {
      DelayedResponse item = delayed_.front();
      delayed_.pop_front();
      Connection* conn = lookup(item.fd);
      if (conn == nullptr || conn->serial != item.serial) continue;
      --conn->delayed;
      conn->output.append(shared_->response);
      if (item.close) conn->close_after_output = true;
      flush(conn);
    }
  }

  // Writes what it can. Returns false when the connection was destroyed.
  bool flush(Connection* conn) {
    while (conn->output_offset < conn->output.size()) {
      ssize_t n = write(conn->fd, conn->output.data() + conn->output_offset,
                        conn->output.size() - conn->output_offset);
      if (n > 0) {
        conn->output_offset += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      destroy(conn);
      return false;
    }
    size_t unsent = conn->output.size() - conn->output_offset;
    if (unsent == 0) {
      conn->output.clear();
      conn->output_offset = 0;
      if (conn->close_after_output && conn->delayed == 0) {
        destroy(conn);
        return false;
      }
      if (conn->read_eof) return finish_if_done(conn);
    } else if (conn->output_offset > kOutputLimit) {
      conn->output.erase(0, conn->output_offset);
      conn->output_offset = 0;
    }
    bool want_write = unsent > 0;
    bool want_read = !conn->read_eof && !conn->closing && unsent < kOutputLimit;
    if (want_write != conn->writing || want_read != conn->reading) {
      conn->writing = want_write;
      conn->reading = want_read;
      update_interest(conn);
    }
    return true;
  }

  Shared* shared_;
  int listen_fd_;
  int epoll_fd_ = -1;
  bool timed_ = false;
  bool have_pwait2_ = true;
  uint64_t serial_ = 0;
  std::vector<char> read_buffer_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::deque<DelayedResponse> delayed_;
};

int bind_listener(const Endpoint& endpoint, std::string* error) {
  int fd = socket(endpoint.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, endpoint.get(), endpoint.length) != 0 || listen(fd, 4096) != 0) {
    *error = "cannot listen on " + endpoint.to_string() + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::string hello_response(uint64_t body_size) {
  static constexpr std::string_view kHello = "Hello, world\n";
  std::string body;
  body.reserve(body_size);
  while (body.size() < body_size) {
    body.append(kHello.substr(0, std::min<size_t>(kHello.size(), body_size - body.size())));
  }
  return "HTTP/1.1 200 OK\r\nServer: ringside-bench\r\nContent-Type: text/plain\r\n"
         "Content-Length: " +
         std::to_string(body_size) + "\r\n\r\n" + body;
}

int run_server(const ServeOptions& options, const std::atomic<bool>* stop) {
  std::string error;
  auto endpoint = resolve_host_port(options.address, &error);
  if (!endpoint) {
    std::fprintf(stderr, "ringside-bench serve: %s\n", error.c_str());
    return 1;
  }
  Shared shared;
  shared.options = &options;
  shared.response = hello_response(options.body_size);
  shared.bad_request =
      "HTTP/1.1 400 Bad Request\r\nServer: ringside-bench\r\nContent-Length: 0\r\n"
      "Connection: close\r\n\r\n";
  shared.stop = stop;
  // A benchmark's app should not be the limit: real gRPC servers allow many more streams
  // per connection than a proxy's 100.
  shared.http2.max_concurrent_streams = 1000;

  unsigned threads = std::max(1u, options.threads);
  std::vector<int> listeners;
  for (unsigned i = 0; i < threads; ++i) {
    int fd = bind_listener(*endpoint, &error);
    if (fd < 0) {
      std::fprintf(stderr, "ringside-bench serve: %s\n", error.c_str());
      for (int other : listeners) close(other);
      return 1;
    }
    if (i == 0 && endpoint->port() == 0) {
      // Port 0: every other thread joins the port the kernel chose for the first.
      endpoint->length = sizeof endpoint->storage;
      getsockname(fd, reinterpret_cast<sockaddr*>(&endpoint->storage), &endpoint->length);
    }
    listeners.push_back(fd);
  }
  std::printf("ringside-bench serve: listening on %s (%s, %u thread%s)\n",
              endpoint->to_string().c_str(),
              options.grpc   ? "grpc, h2c"
              : options.echo ? "echo"
                             : "http",
              threads, threads == 1 ? "" : "s");
  std::fflush(stdout);

  std::vector<std::thread> workers;
  for (int fd : listeners) {
    workers.emplace_back([&shared, fd] { ServerThread(&shared, fd).run(); });
  }
  for (auto& worker : workers) worker.join();
  return 0;
}

}  // namespace ringside::bench
