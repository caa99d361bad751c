#include "net/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace ringside::net {
namespace {

constexpr int kOne = 1;

void set_int_option(int fd, int level, int name, int value) {
  // Failures here only cost performance; the socket still works.
  (void)::setsockopt(fd, level, name, &value, sizeof(value));
}

}  // namespace

Result<int> make_listener(const SocketAddress& address, PortShare share, int backlog) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(ErrorKind::kIo, Side::kInternal, "socket", errno);
  // SO_REUSEADDR only lets the bind pass TIME_WAIT remnants, never a live listener.
  set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (share == PortShare::kJoin) set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  if (::bind(fd, address.get(), address.length) != 0) {
    int err = errno;
    ::close(fd);
    return make_error(ErrorKind::kIo, Side::kInternal, "bind", err);
  }
  // The kernel checks SO_REUSEPORT of the sockets already bound when a new one binds, and
  // puts a socket into its address's reuseport group at listen(2): turned on here, after
  // an exclusive bind, this socket founds the group the other workers join (and another
  // ringside's exclusive bind of the address still fails).
  if (share == PortShare::kFirst &&
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &kOne, sizeof(kOne)) != 0) {
    int err = errno;
    ::close(fd);
    return make_error(ErrorKind::kIo, Side::kInternal, "SO_REUSEPORT", err);
  }
  if (::listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    return make_error(ErrorKind::kIo, Side::kInternal, "listen", err);
  }
  return fd;
}

Result<int> make_client_socket(const SocketAddress& address) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    return make_error(err == EMFILE || err == ENFILE ? ErrorKind::kResource : ErrorKind::kIo,
                      Side::kUpstream, "socket", err);
  }
  set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  return fd;
}

Result<SocketAddress> local_address(int fd) {
  SocketAddress address;
  address.length = sizeof(address.storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0) {
    return make_error(ErrorKind::kIo, Side::kInternal, "getsockname", errno);
  }
  return address;
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace ringside::net
