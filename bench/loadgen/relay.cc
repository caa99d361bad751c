#include "relay.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "common.h"

namespace ringside::bench {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;

// One direction: bytes read from `from` and not yet written to `to`.
struct Pipe {
  int from = -1;
  int to = -1;
  char buffer[kBufferBytes];
  size_t begin = 0;
  size_t end = 0;
  bool eof = false;   // `from` reached EOF
  bool shut = false;  // the EOF was passed on: shutdown(to, SHUT_WR)
};

struct Pair {
  Pipe down_up;  // client -> upstream
  Pipe up_down;  // upstream -> client
  int client = -1;
  int upstream = -1;
  bool connected = false;
};

class Relay {
 public:
  explicit Relay(Endpoint upstream) : upstream_(upstream) {}
  ~Relay() {
    for (auto& [fd, pair] : by_fd_) {
      if (fd == pair->client) {
        ::close(pair->client);
        ::close(pair->upstream);
      }
    }
    if (epoll_ >= 0) ::close(epoll_);
    if (listener_ >= 0) ::close(listener_);
  }

  bool start(const Endpoint& listen, std::string* error) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    listener_ = ::socket(listen.get()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (epoll_ < 0 || listener_ < 0 || ::bind(listener_, listen.get(), listen.length) != 0 ||
        ::listen(listener_, 4096) != 0) {
      *error = std::string("cannot listen on ") + listen.to_string() + ": " + std::strerror(errno);
      return false;
    }
    Endpoint bound;
    bound.length = sizeof(bound.storage);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&bound.storage), &bound.length);
    watch(listener_, EPOLLIN, EPOLL_CTL_ADD);
    std::printf("ringside-bench relay: listening on %s, relaying to %s\n",
                bound.to_string().c_str(), upstream_.to_string().c_str());
    std::fflush(stdout);
    return true;
  }

  void run(const std::atomic<bool>* stop) {
    epoll_event events[256];
    while (!stop->load(std::memory_order_relaxed)) {
      int n = epoll_wait(epoll_, events, 256, 100);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == listener_) {
          accept_all();
          continue;
        }
        auto it = by_fd_.find(fd);
        if (it == by_fd_.end()) continue;
        Pair* pair = it->second.get();
        if (!pair->connected && fd == pair->upstream) {
          int err = 0;
          socklen_t len = sizeof(err);
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) {
            close_pair(pair);
            continue;
          }
          pair->connected = true;
        }
        if (!pump(pair)) close_pair(pair);
      }
    }
  }

 private:
  void watch(int fd, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(epoll_, op, fd, &ev);
  }

  void accept_all() {
    for (;;) {
      int client = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;
      int upstream =
          ::socket(upstream_.get()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (upstream < 0) {
        ::close(client);
        continue;
      }
      tune_stream_socket(client);
      tune_stream_socket(upstream);
      if (::connect(upstream, upstream_.get(), upstream_.length) != 0 && errno != EINPROGRESS) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      auto pair = std::make_shared<Pair>();
      pair->client = client;
      pair->upstream = upstream;
      pair->down_up.from = client;
      pair->down_up.to = upstream;
      pair->up_down.from = upstream;
      pair->up_down.to = client;
      by_fd_[client] = pair;
      by_fd_[upstream] = pair;
      watch(client, 0, EPOLL_CTL_ADD);  // reads start once the upstream is connected
      watch(upstream, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);  // EPOLLOUT: the connect finishing
    }
  }

  // Moves what can move in both directions and sets each socket's interest. False when
  // the pair is done (both directions ended, or an error).
  bool pump(Pair* pair) {
    if (!pair->connected) return true;
    if (!move(pair->down_up) || !move(pair->up_down)) return false;
    if (pair->down_up.shut && pair->up_down.shut) return false;
    interest(pair->client, pair->down_up, pair->up_down);
    interest(pair->upstream, pair->up_down, pair->down_up);
    return true;
  }

  // fd reads for `in` and writes for `out`.
  void interest(int fd, const Pipe& in, const Pipe& out) {
    uint32_t events = 0;
    if (!in.eof && in.end < kBufferBytes) events |= EPOLLIN;
    if (out.begin < out.end) events |= EPOLLOUT;
    watch(fd, events, EPOLL_CTL_MOD);
  }

  static bool move(Pipe& pipe) {
    for (;;) {
      if (pipe.begin < pipe.end) {
        ssize_t n = ::send(pipe.to, pipe.buffer + pipe.begin, pipe.end - pipe.begin, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN;
        pipe.begin += static_cast<size_t>(n);
        if (pipe.begin < pipe.end) return true;
        pipe.begin = pipe.end = 0;
      }
      if (pipe.eof) {
        if (!pipe.shut) {
          ::shutdown(pipe.to, SHUT_WR);
          pipe.shut = true;
        }
        return true;
      }
      ssize_t n = ::recv(pipe.from, pipe.buffer, kBufferBytes, 0);
      if (n < 0) return errno == EAGAIN;
      if (n == 0) {
        pipe.eof = true;
        continue;
      }
      pipe.end = static_cast<size_t>(n);
    }
  }

  void close_pair(Pair* pair) {
    int client = pair->client, upstream = pair->upstream;
    ::close(client);  // closing drops the epoll registrations
    ::close(upstream);
    by_fd_.erase(client);
    by_fd_.erase(upstream);  // the last reference: pair is gone
  }

  Endpoint upstream_;
  int epoll_ = -1;
  int listener_ = -1;
  std::unordered_map<int, std::shared_ptr<Pair>> by_fd_;
};

}  // namespace

int run_relay(const RelayOptions& options, const std::atomic<bool>* stop) {
  std::string error;
  auto listen = resolve_host_port(options.listen, &error);
  if (!listen) {
    std::fprintf(stderr, "ringside-bench relay: %s\n", error.c_str());
    return 1;
  }
  auto upstream = resolve_host_port(options.upstream, &error);
  if (!upstream) {
    std::fprintf(stderr, "ringside-bench relay: upstream: %s\n", error.c_str());
    return 1;
  }
  Relay relay(*upstream);
  if (!relay.start(*listen, &error)) {
    std::fprintf(stderr, "ringside-bench relay: %s\n", error.c_str());
    return 1;
  }
  relay.run(stop);
  return 0;
}

}  // namespace ringside::bench
