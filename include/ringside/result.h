// Result<T>: the error type of the data path. No exceptions are thrown on the data
// path; an Error says what kind of failure, on which side of the proxy, and the errno.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <variant>

namespace ringside {

enum class ErrorKind : uint8_t {
  kIo,        // a socket or file operation failed (see sys_errno)
  kTimeout,   // a connect, handshake, idle or request timer fired
  kRefused,   // the peer refused the connection
  kReset,     // the peer reset the connection
  kTls,       // TLS handshake or record failure
  kVerify,    // the peer certificate failed verification
  kProtocol,  // malformed bytes from the peer
  kResource,  // out of memory, descriptors or buffers
  kConfig,    // invalid configuration (start-up only)
  kInternal,  // a bug: should never happen
};

enum class Side : uint8_t { kDownstream, kUpstream, kInternal };

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  Side side = Side::kInternal;
  int sys_errno = 0;
  // A static string describing the failure; never owned.
  std::string_view what;
};

std::string_view to_string(ErrorKind kind);
std::string_view to_string(Side side);

// A value or an Error. Small, move-only-friendly, no allocation of its own.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(error) {}         // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(error), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_{};
  bool ok_ = true;
};

inline Error make_error(ErrorKind kind, Side side, std::string_view what, int sys_errno = 0) {
  return Error{kind, side, sys_errno, what};
}

}  // namespace ringside
