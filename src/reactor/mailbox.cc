#include "ringside/mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace ringside {

Result<std::unique_ptr<Mailbox>> Mailbox::make(size_t capacity) {
  // Blocking on purpose: io_uring completes a read on an O_NONBLOCK file with -EAGAIN on
  // some kernels instead of waiting. A writer could only block at a counter of 2^64-2.
  int fd = ::eventfd(0, EFD_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorKind::kResource, Side::kInternal, "eventfd for a worker mailbox", errno);
  }
  return std::unique_ptr<Mailbox>(new Mailbox(fd, capacity));
}

Mailbox::~Mailbox() { ::close(event_fd_); }

bool Mailbox::post(Message&& message) {
  if (!queue_.push(std::move(message))) return false;
  // After the push: the worker's read completes only once the message is visible.
  uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(event_fd_, &one, sizeof(one));
  } while (n < 0 && errno == EINTR);
  return true;
}

}  // namespace ringside
