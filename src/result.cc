#include "ringside/result.h"

namespace ringside {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kRefused:
      return "refused";
    case ErrorKind::kReset:
      return "reset";
    case ErrorKind::kTls:
      return "tls";
    case ErrorKind::kVerify:
      return "verify";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kResource:
      return "resource";
    case ErrorKind::kConfig:
      return "config";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string_view to_string(Side side) {
  switch (side) {
    case Side::kDownstream:
      return "downstream";
    case Side::kUpstream:
      return "upstream";
    case Side::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace ringside
