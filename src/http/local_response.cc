// Responses the proxy makes itself, and the retry policy.
#include <charconv>

#include "ringside/grpc.h"
#include "ringside/http_proxy.h"

namespace ringside::http {

uint16_t local_status(LocalCause cause) {
  switch (cause) {
    case LocalCause::kBadRequest:
      return 400;
    case LocalCause::kRequestHeaderTimeout:
      return 408;
    case LocalCause::kPayloadTooLarge:
      return 413;
    case LocalCause::kUriTooLong:
      return 414;
    case LocalCause::kHeaderTooLarge:
      return 431;
    case LocalCause::kNotImplemented:
      return 501;
    case LocalCause::kVersionNotSupported:
      return 505;
    case LocalCause::kUpstreamConnectFailure:
    case LocalCause::kUpstreamConnectTimeout:
    case LocalCause::kNoHealthyUpstream:
      return 503;
    case LocalCause::kUpstreamReset:
    case LocalCause::kUpstreamProtocolError:
    case LocalCause::kUpstreamTlsFailure:
      return 502;
    case LocalCause::kRequestTimeout:
      return 504;
  }
  return 500;
}

std::string_view local_body(LocalCause cause) {
  switch (cause) {
    case LocalCause::kBadRequest:
      return "bad request";
    case LocalCause::kRequestHeaderTimeout:
      return "request header timeout";
    case LocalCause::kPayloadTooLarge:
      return "request body too large";
    case LocalCause::kUriTooLong:
      return "request-line too long";
    case LocalCause::kHeaderTooLarge:
      return "request header too large";
    case LocalCause::kNotImplemented:
      return "transfer coding not implemented";
    case LocalCause::kVersionNotSupported:
      return "HTTP version not supported";
    case LocalCause::kUpstreamConnectFailure:
      return "upstream connect failure";
    case LocalCause::kUpstreamConnectTimeout:
      return "upstream connect timeout";
    case LocalCause::kNoHealthyUpstream:
      return "no healthy upstream";
    case LocalCause::kUpstreamReset:
      return "upstream reset before response";
    case LocalCause::kUpstreamProtocolError:
      return "upstream sent an invalid response";
    case LocalCause::kUpstreamTlsFailure:
      return "upstream TLS handshake failed";
    case LocalCause::kRequestTimeout:
      return "upstream request timeout";
  }
  return "internal error";
}

namespace {

// server, x-request-id, connection: close as the response says, and the end of the head.
void append_proxy_fields(const LocalResponse& response, std::string& out) {
  if (response.server_header) out += "server: ringside\r\n";
  if (!response.request_id.empty()) {
    out += "x-request-id: ";
    out += response.request_id;
    out += "\r\n";
  }
  if (response.close) out += "connection: close\r\n";
  out += "\r\n";
}

}  // namespace

void make_local_response(const LocalResponse& response, std::string& out) {
  char digits[24];
  if (response.grpc) {
    // Trailers-Only as HTTP/1.1 can carry it (gRPC clients speak HTTP/2; this is for a
    // gRPC request that reached an HTTP/1.1 listener connection all the same).
    out += "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: ";
    auto result = std::to_chars(digits, digits + sizeof(digits),
                                static_cast<unsigned>(grpc::status_for_http(response.status)));
    out.append(digits, static_cast<size_t>(result.ptr - digits));
    out += "\r\ngrpc-message: ";
    grpc::percent_encode_message(response.body, out);
    out += "\r\ncontent-length: 0\r\n";
    append_proxy_fields(response, out);
    return;
  }
  out += "HTTP/1.1 ";
  auto result = std::to_chars(digits, digits + sizeof(digits), response.status);
  out.append(digits, static_cast<size_t>(result.ptr - digits));
  out += ' ';
  out += standard_reason(response.status);
  out += "\r\ncontent-type: text/plain\r\ncontent-length: ";
  result = std::to_chars(digits, digits + sizeof(digits), response.body.size() + 1);
  out.append(digits, static_cast<size_t>(result.ptr - digits));
  out += "\r\n";
  append_proxy_fields(response, out);
  if (!response.head_request) {
    out += response.body;
    out += '\n';
  }
}

LocalResponse local_response_for(const ParseError& error) {
  LocalResponse response;
  response.status = error.status == 0 ? 400 : error.status;
  response.body = error.reason.empty() ? local_body(LocalCause::kBadRequest) : error.reason;
  response.close = true;
  return response;
}

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

RetryVerdict may_retry(const RetryAttempt& attempt, unsigned max_retries) {
  if (attempt.body_started) return RetryVerdict::kNo;
  switch (attempt.reason) {
    case RetryReason::kReusedConnectionClosed:
      return RetryVerdict::kRetryUncounted;
    case RetryReason::kConnectFailure:
      // Nothing reached the upstream: any method may go to another endpoint (as Envoy's
      // connect-failure and nginx's proxy_next_upstream error do).
      return attempt.retries_done < max_retries ? RetryVerdict::kRetry : RetryVerdict::kNo;
    case RetryReason::kResetBeforeResponse:
    case RetryReason::kStatus503:
      if (!is_idempotent(attempt.method)) return RetryVerdict::kNo;
      return attempt.retries_done < max_retries ? RetryVerdict::kRetry : RetryVerdict::kNo;
    case RetryReason::kOther:
      return RetryVerdict::kNo;
  }
  return RetryVerdict::kNo;
}

}  // namespace ringside::http
