// The pieces of ringside's HTTP/1.1 proxy that are not the event loop: re-encoding request
// and response heads for the next hop, re-framing bodies, responses the proxy makes itself,
// request ids and the retry policy. Pure functions over parsed heads (ringside/http.h);
// they append to a caller-owned std::string, so a worker that reuses one scratch string
// allocates nothing once it is warm. docs/http-proxy.md explains every decision.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ringside/http.h"
#include "ringside/http_config.h"

namespace ringside::http {

// ---- request ids ----------------------------------------------------------------------

// A request id as text: 36 characters, formatted like a UUIDv4
// ("xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx", lower-case hex).
struct RequestId {
  static constexpr size_t kLength = 36;
  char text[kLength];
  std::string_view view() const { return {text, kLength}; }
};

// A fresh random 128-bit id from the calling thread's PRNG (xoshiro256**, seeded once per
// thread from getrandom(2)): no system call per request. Not for secrets.
RequestId generate_request_id();

// The value of the first x-request-id field, or empty when there is none.
std::string_view find_request_id(std::span<const Field> fields);

// The first field named name (any case), or nullptr.
const Field* find_field(std::span<const Field> fields, std::string_view name);

// ---- request heads --------------------------------------------------------------------

// How the proxy forwards one request.
struct RequestContext {
  HeaderOptions headers;
  // Ingress listeners (client -> ringside over TLS) add x-forwarded-for and
  // x-forwarded-proto: https; egress listeners (local app -> ringside) add neither.
  bool ingress = false;
  // Ingress: the client came over TLS (false: plaintext on a tls=permissive port, and
  // x-forwarded-proto says http).
  bool client_tls = true;
  // The client is a trusted downstream (--trusted-downstream: a load balancer in front of
  // the ingress): the x-forwarded-proto it sent is kept, as it knows the scheme its own
  // client used; https is added only when it sent none. Untrusted clients' values are
  // replaced, so that nobody can claim a scheme they did not use.
  bool trusted_downstream = false;
  // The client's IP address as text, without port or brackets ("10.0.0.1", "::1").
  std::string_view client_address;
  // The id this request carries upstream: find_request_id() when the client sent one
  // (it is then forwarded as received), else a generate_request_id() (added as
  // x-request-id when headers.request_id is on). May be empty.
  std::string_view request_id;
  // Host sent upstream when the request has none (HTTP/1.0 without Host); the head is
  // encoded as HTTP/1.1, which requires one (an HTTP/2 upstream reads it back as
  // :authority). Typically the upstream service name.
  std::string_view default_host;
  // Ingress: the x-forwarded-client-cert value for the verified client (authz::append_xfcc),
  // added when headers.client_cert is on; empty: none. Any x-forwarded-client-cert the
  // client sent is removed on ingress whatever this is: it is never trusted.
  std::string_view client_cert;
  // Forward an Upgrade (WebSocket) request: Connection: upgrade and Upgrade are re-added.
  // When false an upgrade request goes upstream as a plain request.
  bool forward_upgrade = true;
};

// Appends the request head sent upstream to out:
// - request-line: method and target as received, except that an absolute-form target
//   becomes origin-form ("http://a/b?c" -> "/b?c"); always HTTP/1.1;
// - Host first, from the parsed authority (head.authority, else context.default_host);
// - every other field as received (order and spelling kept) except hop-by-hop ones (the
//   fixed list and those a Connection field names), Host, Content-Length and
//   Transfer-Encoding; with forwarded headers on (ingress), also except
//   x-forwarded-for and (from an untrusted client) x-forwarded-proto, which are re-emitted;
// - framing from the parse: Content-Length: N, or Transfer-Encoding: chunked, or nothing;
// - Connection: upgrade and Upgrade: <protocols> for a forwarded upgrade; otherwise no
//   Connection field (keep-alive is HTTP/1.1's default);
// - x-request-id when absent and enabled; x-forwarded-for (the received values, comma
//   joined, then the client address) and x-forwarded-proto on ingress: https, or the
//   fields a trusted downstream sent, kept in place; on ingress, x-forwarded-client-cert
//   from context.client_cert (a received one is always dropped).
// Expect: 100-continue is an end-to-end field and is forwarded.
void encode_request_head(const RequestHead& head, const RequestContext& context, std::string& out);

// Appends the request-target sent upstream: origin-form for an absolute-form target
// ("http://a/b?c" -> "/b?c", "http://a?c" -> "/?c"), else the target as received.
void append_upstream_target(const RequestHead& head, std::string& out);

// The path of an origin- or absolute-form target without its query ("/a/b" for
// "/a/b?x=1"); the target as received for the other forms.
std::string_view target_path(const RequestHead& head);

// ---- response heads -------------------------------------------------------------------

// How a response body travels to the client.
enum class BodyFraming : uint8_t {
  kNone,           // no body
  kContentLength,  // forwarded byte for byte; the head says Content-Length
  kChunked,        // re-framed with append_chunk()/append_last_chunk()
  kUntilClose,     // raw bytes, then the connection to the client closes
  kTunnel,         // a protocol switch (101): bytes flow both ways, unparsed
};

struct ResponseContext {
  HeaderOptions headers;
  Version client_version = Version::kHttp11;  // the request's version
  bool request_is_head = false;               // the response answers HEAD
  // The connection to the client closes after this response: the client asked for it
  // (RequestHead::keep_alive false), the proxy is draining, or after an error.
  bool close = false;
  // Milliseconds from sending the request head upstream to the response head; negative:
  // unknown (no x-upstream-service-time).
  int64_t upstream_service_time_ms = -1;
};

// What encode_response_head decided.
struct ResponsePlan {
  BodyFraming framing = BodyFraming::kNone;
  // Close the client connection after the body: context.close, or a body that can only
  // be delimited by closing (a chunked or until-close body towards an HTTP/1.0 client).
  bool close = false;
};

// Appends the response head sent to the client:
// - status-line: HTTP/1.1, the status, the reason as received (the standard reason when
//   the upstream sent none);
// - fields as received minus hop-by-hop ones, Content-Length and Transfer-Encoding
//   (a response to HEAD and a 304 keep their Content-Length: it describes the
//   representation, not this message's body); with the header on, minus Server and
//   x-upstream-service-time, which are replaced;
// - framing: Content-Length: N; an upstream chunked or until-close body is chunked
//   towards an HTTP/1.1 client and close-delimited towards an HTTP/1.0 client;
// - Connection: close when the client connection closes after this response, Connection:
//   keep-alive to an HTTP/1.0 client that keeps it, Connection: upgrade and Upgrade on a
//   101; server: ringside and x-upstream-service-time: <ms> when enabled.
// Interim 1xx heads (100 Continue, 103) get the status-line and their fields minus
// hop-by-hop ones, nothing added; the caller forwards them to HTTP/1.1 clients only.
ResponsePlan encode_response_head(const ResponseHead& head, const ResponseContext& context,
                                  std::string& out);

// The standard reason phrase of a status ("Not Found"), or "" when unknown.
std::string_view standard_reason(uint16_t status);

// ---- bodies ---------------------------------------------------------------------------

// Chunked framing (RFC 9112 7.1) around payload the caller forwards itself, so payload
// slices need not be copied: header, the size bytes of payload, trailer. size must be > 0
// (a zero-size chunk ends the body).
void append_chunk_header(std::string& out, size_t size);  // "<hex size>\r\n"
void append_chunk_end(std::string& out);                  // "\r\n" after the payload
// A whole chunk; nothing for empty data.
void append_chunk(std::string& out, std::string_view data);
// "0\r\n", the trailer fields (minus hop-by-hop ones), "\r\n".
void append_last_chunk(std::string& out, std::span<const Field> trailers);

// Counts a Content-Length body through, so the proxy knows when the message ends and
// never forwards a byte more than the length promised.
class ContentLengthCounter {
 public:
  explicit ContentLengthCounter(uint64_t length = 0) : remaining_(length) {}
  // How many of n offered bytes belong to the body (the rest belongs to what follows).
  size_t accept(size_t n) {
    const size_t taken = n < remaining_ ? n : static_cast<size_t>(remaining_);
    remaining_ -= taken;
    return taken;
  }
  uint64_t remaining() const { return remaining_; }
  bool complete() const { return remaining_ == 0; }

 private:
  uint64_t remaining_;
};

// ---- responses made by the proxy ------------------------------------------------------

// Why the proxy answers a request itself. Each cause has its status, the body text (also
// the access log's reason) and the response flag the access log shows.
enum class LocalCause : uint8_t {
  kBadRequest,              // 400; the parser's reason is the body
  kRequestHeaderTimeout,    // 408 "request header timeout"
  kPayloadTooLarge,         // 413 (parser)
  kUriTooLong,              // 414 (parser)
  kHeaderTooLarge,          // 431 (parser)
  kNotImplemented,          // 501 (parser: unknown transfer coding)
  kVersionNotSupported,     // 505 (parser)
  kUpstreamConnectFailure,  // 503 UF "upstream connect failure"
  kUpstreamConnectTimeout,  // 503 UF "upstream connect timeout"
  kNoHealthyUpstream,       // 503 UH "no healthy upstream"
  kUpstreamReset,           // 502 UC "upstream reset before response"
  kUpstreamProtocolError,   // 502 UPE "upstream sent an invalid response"
  kUpstreamTlsFailure,      // 502 UF "upstream TLS handshake failed"
  kRequestTimeout,          // 504 UT "upstream request timeout"
};

struct LocalResponse {
  uint16_t status = 500;
  std::string_view body;        // without the final "\n"; static text
  std::string_view request_id;  // x-request-id when known
  bool close = false;           // Connection: close (the proxy closes after sending it)
  bool head_request = false;    // answer to HEAD: the same head, no body
  bool server_header = true;    // server: ringside
  // A gRPC request: a Trailers-Only response (200, application/grpc, grpc-status mapped
  // from status by grpc::status_for_http, grpc-message the body), no body.
  bool grpc = false;
};

// The status and the default body text of a cause.
uint16_t local_status(LocalCause cause);
std::string_view local_body(LocalCause cause);

// Appends a complete response: "HTTP/1.1 <status> <reason>", content-type: text/plain,
// content-length, server: ringside, x-request-id, connection: close when closing, then
// the body "<body>\n".
void make_local_response(const LocalResponse& response, std::string& out);

// The response the proxy sends after a request parse error: the error's status and
// reason as body, always closing (the parser is dead after an error).
LocalResponse local_response_for(const ParseError& error);

// ---- retries --------------------------------------------------------------------------

// Why an upstream attempt failed.
enum class RetryReason : uint8_t {
  kConnectFailure,          // refused, unreachable, connect or TLS handshake failed/timed out
  kResetBeforeResponse,     // a fresh connection closed or reset before any response byte
  kStatus503,               // the upstream answered 503 (and nothing of it was forwarded)
  kReusedConnectionClosed,  // a pooled (reused) connection closed before any response byte
  kOther,                   // anything else (timeout of the request, bad response, ...)
};

enum class RetryVerdict : uint8_t {
  kNo,              // answer the client with the failure
  kRetry,           // try again; counts against the retry limit
  kRetryUncounted,  // try again on another connection; does not count (a stale pooled one)
};

// GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110 9.2.2).
bool is_idempotent(std::string_view method);

struct RetryAttempt {
  std::string_view method;
  // Request body bytes were already forwarded upstream: they are gone, the request
  // cannot be replayed.
  bool body_started = false;
  unsigned retries_done = 0;  // counted retries so far
  RetryReason reason = RetryReason::kOther;
};

// Never once request body bytes are gone (body_started). Otherwise, while retries_done <
// max_retries: a connect failure for any method (nothing reached the upstream); a reset
// before any response byte or a 503 for idempotent methods only. A pooled connection that
// closed before any response byte is retried for any method and does not count: the
// upstream closing an idle keep-alive connection races with our request and must not
// surface as an error. docs/http-proxy.md discusses the trade-off.
RetryVerdict may_retry(const RetryAttempt& attempt, unsigned max_retries);

}  // namespace ringside::http
