// The admin HTTP server: one thread, one poll() loop, non-blocking sockets, one request
// per connection. It is for operators and health checks, not for load: clarity wins
// over speed here, but a slow client must never hold up the others.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "ringside/admin.h"
#include "ringside/http.h"
#include "ringside/http_proxy.h"
#include "ringside/log.h"

namespace ringside {

namespace {

using Clock = std::chrono::steady_clock;

// The standard reason phrase (shared with the HTTP proxy), or the status class.
std::string_view reason_phrase(int status) {
  std::string_view reason = http::standard_reason(static_cast<uint16_t>(status));
  if (!reason.empty()) return reason;
  if (status < 300) return "OK";
  if (status < 500) return "Client Error";
  return "Server Error";
}

using http::iequals;  // field names compare case-insensitively (ringside/http.h)

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok) return false;
  }
  return true;
}

std::string serialize(const AdminResponse& response, bool include_body,
                      const std::string& extra_headers) {
  std::string out;
  out.reserve(128 + response.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += reason_phrase(response.status);
  out += "\r\nContent-Type: ";
  out += response.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(response.status == 204 ? 0 : response.body.size());
  out += "\r\nConnection: close\r\nCache-Control: no-store\r\n";
  out += extra_headers;
  out += "\r\n";
  if (include_body && response.status != 204) out += response.body;
  return out;
}

AdminResponse plain(int status, std::string body) {
  return AdminResponse{status, "text/plain", std::move(body)};
}

struct Connection {
  int fd = -1;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool writing = false;
  bool sent_continue = false;
  Clock::time_point deadline;
};

// What the bytes received so far amount to.
struct ParsedRequest {
  enum class State { kIncomplete, kComplete, kError } state = State::kIncomplete;
  AdminResponse error;  // kError: what to answer
  std::string method, target, body;
  bool expects_continue = false;
};

ParsedRequest parse_request(const std::string& in, const AdminServerOptions& options) {
  ParsedRequest request;
  auto error = [&request](int status, std::string body) {
    request.state = ParsedRequest::State::kError;
    request.error = plain(status, std::move(body));
    return request;
  };
  const size_t header_end = in.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (in.size() > options.max_header_bytes) return error(431, "request headers too large\n");
    return request;
  }
  if (header_end + 4 > options.max_header_bytes) return error(431, "request headers too large\n");

  const std::string_view head(in.data(), header_end);
  const size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return error(400, "malformed request line\n");
  const std::string_view method = request_line.substr(0, sp1);
  const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = request_line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || target.front() != '/' ||
      target.find(' ') != std::string_view::npos ||
      (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    return error(400, "malformed request line\n");
  }

  size_t content_length = 0;
  bool seen_length = false;
  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return error(400, "malformed header\n");
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "Content-Length")) {
      size_t n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || ptr != value.data() + value.size() ||
          (seen_length && n != content_length)) {
        return error(400, "bad Content-Length\n");
      }
      content_length = n;
      seen_length = true;
    } else if (iequals(name, "Transfer-Encoding")) {
      return error(501, "chunked request bodies are not supported; send Content-Length\n");
    } else if (iequals(name, "Expect") && iequals(value, "100-continue")) {
      request.expects_continue = true;
    }
  }
  if (content_length > options.max_body_bytes) return error(413, "request body too large\n");
  const size_t body_start = header_end + 4;
  if (in.size() < body_start + content_length) return request;  // body still coming
  request.state = ParsedRequest::State::kComplete;
  request.method = std::string(method);
  request.target = std::string(target);
  request.body = in.substr(body_start, content_length);
  return request;
}

}  // namespace

class AdminServer::Impl {
 public:
  Impl(int listen_fd, int wake_fd, SocketAddress bound, AdminServerOptions options)
      : listen_fd_(listen_fd),
        wake_fd_(wake_fd),
        bound_(bound),
        options_(options),
        starting_(options.starting) {}

  ~Impl() {
    stop();
    ::close(wake_fd_);
  }

  void start_thread() {
    // The admin thread takes no signals: whoever handles SIGTERM and friends (the
    // control thread) must get them, whether it uses sigwait, signalfd or handlers.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    thread_ = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }

  void stop() {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    if (thread_.joinable()) {
      const uint64_t one = 1;
      while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
      }
      thread_.join();
    }
    if (listen_fd_ >= 0) {
      ::close(listen_fd_);  // from now on, connecting is refused
      listen_fd_ = -1;
    }
  }

  void route(std::string method, std::string path, AdminHandler handler) {
    std::lock_guard<std::mutex> lock(routes_mutex_);
    routes_[std::move(path)][std::move(method)] = std::move(handler);
  }

  void routes_complete() {
    std::lock_guard<std::mutex> lock(routes_mutex_);
    starting_ = false;
  }

  SocketAddress bound() const { return bound_; }

 private:
  void run() {
    log::set_thread_name("admin");
    std::vector<Connection> connections;
    std::vector<pollfd> fds;
    Clock::time_point accept_paused_until{};
    while (true) {
      const Clock::time_point now = Clock::now();
      fds.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      const bool accepting =
          connections.size() < options_.max_connections && now >= accept_paused_until;
      fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
      Clock::time_point next_deadline = now + std::chrono::seconds(60);
      if (!accepting && accept_paused_until > now) {
        next_deadline = std::min(next_deadline, accept_paused_until);
      }
      for (const Connection& c : connections) {
        fds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
        next_deadline = std::min(next_deadline, c.deadline);
      }
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_deadline - now);
      const int ready =
          ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, wait.count())));
      if (ready < 0 && errno != EINTR) {
        RS_ERROR("admin: poll: %s", std::strerror(errno));
        break;
      }
      if (fds[0].revents != 0) break;  // stop()

      const Clock::time_point after = Clock::now();
      // Existing connections first: fds[i + 2] belongs to connections[i].
      for (size_t i = 0; i < connections.size(); ++i) {
        Connection& c = connections[i];
        const short revents = fds[i + 2].revents;
        bool keep = true;
        if (revents != 0) {
          keep = c.writing ? on_writable(c) : on_readable(c);
        } else if (after >= c.deadline) {
          keep = on_timeout(c);
        }
        if (!keep) {
          ::close(c.fd);
          c.fd = -1;
        }
      }
      connections.erase(std::remove_if(connections.begin(), connections.end(),
                                       [](const Connection& c) { return c.fd < 0; }),
                        connections.end());

      if (accepting && fds[1].revents != 0) accept_all(connections, &accept_paused_until);
    }
    for (Connection& c : connections) ::close(c.fd);
  }

  void accept_all(std::vector<Connection>& connections, Clock::time_point* paused_until) {
    while (connections.size() < options_.max_connections) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: the listen socket would stay readable and spin the loop.
          RS_LOG_RATE_LIMITED(log::Level::kWarn, 1, "admin: accept: %s", std::strerror(errno));
          *paused_until = Clock::now() + std::chrono::milliseconds(100);
        }
        return;  // EAGAIN, or a connection that died in the queue
      }
      Connection c;
      c.fd = fd;
      c.deadline = Clock::now() + options_.read_timeout;
      connections.push_back(std::move(c));
    }
  }

  // Returns false when the connection is finished.
  bool on_readable(Connection& c) {
    char buffer[16 * 1024];
    while (true) {
      const ssize_t n = ::recv(c.fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        c.in.append(buffer, static_cast<size_t>(n));
        if (c.in.size() > options_.max_header_bytes + options_.max_body_bytes + 4) break;
        continue;
      }
      if (n == 0) return false;  // the client gave up before finishing its request
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    const ParsedRequest request = parse_request(c.in, options_);
    switch (request.state) {
      case ParsedRequest::State::kIncomplete:
        if (request.expects_continue && !c.sent_continue) {
          // curl waits for this before sending a body; a fresh socket takes 25 bytes.
          static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
          c.sent_continue = true;
          if (::send(c.fd, kContinue, sizeof(kContinue) - 1, MSG_NOSIGNAL) < 0) return false;
        }
        return true;
      case ParsedRequest::State::kError:
        return respond(c, request.error, true, "");
      case ParsedRequest::State::kComplete:
        return dispatch(c, request);
    }
    return false;
  }

  bool dispatch(Connection& c, const ParsedRequest& request) {
    const std::string path = request.target.substr(0, request.target.find('?'));
    const bool head = request.method == "HEAD";
    AdminHandler handler;
    std::string allow;
    {
      std::lock_guard<std::mutex> lock(routes_mutex_);
      if (starting_) return respond(c, plain(503, "starting\n"), !head, "");
      auto by_path = routes_.find(path);
      if (by_path == routes_.end()) return respond(c, plain(404, "not found\n"), !head, "");
      auto by_method = by_path->second.find(head ? "GET" : request.method);
      if (by_method == by_path->second.end()) {
        for (const auto& [method, unused] : by_path->second) {
          allow += allow.empty() ? "" : ", ";
          allow += method;
          if (method == "GET") allow += ", HEAD";
        }
        return respond(c, plain(405, "method not allowed\n"), !head, "Allow: " + allow + "\r\n");
      }
      handler = by_method->second;  // a copy: the handler runs without the lock
    }
    AdminResponse response;
    try {
      response = handler(request.method, request.target, request.body);
    } catch (const std::exception& e) {
      RS_ERROR("admin: %s %s: handler threw: %s", request.method.c_str(), path.c_str(), e.what());
      response = plain(500, "internal error\n");
    } catch (...) {
      RS_ERROR("admin: %s %s: handler threw", request.method.c_str(), path.c_str());
      response = plain(500, "internal error\n");
    }
    return respond(c, response, !head, "");
  }

  bool respond(Connection& c, const AdminResponse& response, bool include_body,
               const std::string& extra_headers) {
    c.out = serialize(response, include_body, extra_headers);
    c.sent = 0;
    c.writing = true;
    c.deadline = Clock::now() + options_.read_timeout;
    return on_writable(c);
  }

  bool on_writable(Connection& c) {
    while (c.sent < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
    // All sent. Half-close so the client sees the end even if it ignores Content-Length.
    ::shutdown(c.fd, SHUT_WR);
    return false;
  }

  bool on_timeout(Connection& c) {
    if (c.writing) return false;  // the client stopped reading: give up on it
    // Best effort: the socket is fresh enough that a short answer fits its buffer.
    const std::string out = serialize(plain(408, "request timeout\n"), true, "");
    [[maybe_unused]] const ssize_t n = ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
    ::shutdown(c.fd, SHUT_WR);
    return false;
  }

  int listen_fd_;  // -1 once stopped
  const int wake_fd_;
  const SocketAddress bound_;
  const AdminServerOptions options_;
  std::thread thread_;
  std::mutex stop_mutex_;
  std::mutex routes_mutex_;
  bool starting_;                                                      // guarded by routes_mutex_
  std::map<std::string, std::map<std::string, AdminHandler>> routes_;  // [path][method]
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() = default;

Result<std::unique_ptr<AdminServer>> AdminServer::start(const SocketAddress& address,
                                                        std::string* detail) {
  return start(address, AdminServerOptions{}, detail);
}

Result<std::unique_ptr<AdminServer>> AdminServer::start(const SocketAddress& address,
                                                        const AdminServerOptions& options,
                                                        std::string* detail) {
  auto fail = [&](const char* step, int err) -> Result<std::unique_ptr<AdminServer>> {
    if (detail) {
      *detail = std::string(step) + " " + address.to_string() + ": " + std::strerror(err);
    }
    return make_error(ErrorKind::kIo, Side::kInternal, "admin server did not start", err);
  };
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket for", errno);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, address.get(), address.length) != 0 || ::listen(fd, 64) != 0) {
    const int err = errno;
    ::close(fd);
    return fail("cannot listen on", err);
  }
  SocketAddress bound;
  bound.length = sizeof(bound.storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound.storage), &bound.length) != 0) {
    bound = address;
  }
  const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    const int err = errno;
    ::close(fd);
    return fail("eventfd for", err);
  }
  auto impl = std::make_unique<Impl>(fd, wake, bound, options);
  impl->start_thread();
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

void AdminServer::route(std::string method, std::string path, AdminHandler handler) {
  impl_->route(std::move(method), std::move(path), std::move(handler));
}

void AdminServer::routes_complete() { impl_->routes_complete(); }

SocketAddress AdminServer::bound_address() const { return impl_->bound(); }

void AdminServer::stop() { impl_->stop(); }

}  // namespace ringside
