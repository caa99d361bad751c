// Socket set-up done outside the ring: creating listeners and upstream sockets.
#pragma once

#include "ringside/address.h"
#include "ringside/result.h"

namespace ringside::net {

// How a listener socket joins the SO_REUSEPORT group of its address.
enum class PortShare {
  // The first socket of this process on the address: bound WITHOUT SO_REUSEPORT, so the
  // bind fails (EADDRINUSE) when any other socket already holds an overlapping address,
  // whether or not that one has SO_REUSEPORT; only then is SO_REUSEPORT turned on, before
  // listen(2), so this socket founds the group the others join.
  kFirst,
  // A further socket of this process on the same address: bound with SO_REUSEPORT.
  kJoin,
};

// A non-blocking listening TCP socket with SO_REUSEPORT (one per worker per listener,
// so the kernel spreads connections across workers), SO_REUSEADDR and TCP_NODELAY
// (inherited by accepted sockets). backlog: listen(2) backlog.
Result<int> make_listener(const SocketAddress& address, PortShare share, int backlog = 4096);

// A non-blocking TCP socket for connecting to address's family, with TCP_NODELAY.
Result<int> make_client_socket(const SocketAddress& address);

// The address a socket is bound to (for ports chosen by the kernel).
Result<SocketAddress> local_address(int fd);

// The pending error of a socket (SO_ERROR), 0 when none.
int socket_error(int fd);

}  // namespace ringside::net
