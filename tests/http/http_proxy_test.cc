// The proxy's head encoders, chunked framing, local responses, request ids and retry
// policy: exact bytes for heads parsed by the real parser.
#include "ringside/http_proxy.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "ringside/http.h"

namespace ringside::http {
namespace {

// Parses one request head (the message must end with its head for kHead to be returned
// with all the bytes) and encodes it.
std::string encode_request(std::string_view bytes, const RequestContext& context) {
  RequestParser parser;
  const Step step = parser.parse(bytes);
  EXPECT_EQ(step.event, Event::kHead) << parser.error().reason;
  if (step.event != Event::kHead) return "";
  std::string out;
  encode_request_head(parser.head(), context, out);
  return out;
}

struct ResponseResult {
  std::string bytes;
  ResponsePlan plan;
};

ResponseResult encode_response(std::string_view bytes, const ResponseContext& context,
                               RequestKind kind = RequestKind::kOther) {
  ResponseParser parser;
  parser.expect_response_to(kind);
  const Step step = parser.parse(bytes);
  EXPECT_EQ(step.event, Event::kHead) << parser.error().reason;
  ResponseResult result;
  if (step.event != Event::kHead) return result;
  result.plan = encode_response_head(parser.head(), context, result.bytes);
  return result;
}

RequestContext egress() {
  RequestContext context;
  context.request_id = "11111111-2222-4333-8444-555555555555";
  return context;
}

RequestContext ingress(std::string_view client = "10.0.0.9") {
  RequestContext context = egress();
  context.ingress = true;
  context.client_address = client;
  return context;
}

// ---------------------------------------------------------------- requests

TEST(EncodeRequestHead, SimpleGetGainsRequestId) {
  EXPECT_EQ(
      encode_request("GET /a?b=1 HTTP/1.1\r\nHost: orders.ns\r\nAccept: */*\r\n\r\n", egress()),
      "GET /a?b=1 HTTP/1.1\r\nHost: orders.ns\r\nAccept: */*\r\n"
      "x-request-id: 11111111-2222-4333-8444-555555555555\r\n\r\n");
}

TEST(EncodeRequestHead, ExistingRequestIdIsKept) {
  RequestContext context = egress();
  context.request_id = "from-client";
  EXPECT_EQ(
      encode_request("GET / HTTP/1.1\r\nX-Request-ID: from-client\r\nHost: h\r\n\r\n", context),
      "GET / HTTP/1.1\r\nHost: h\r\nX-Request-ID: from-client\r\n\r\n");
}

TEST(EncodeRequestHead, RequestIdSwitchedOff) {
  RequestContext context = egress();
  context.headers.request_id = false;
  EXPECT_EQ(encode_request("GET / HTTP/1.1\r\nHost: h\r\n\r\n", context),
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(EncodeRequestHead, HopByHopFieldsRemovedIncludingConnectionNamed) {
  const std::string out = encode_request(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret , foo\r\n"
      "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
      "Trailer: x\r\nx-secret: 1\r\nFoo: 2\r\nX-Kept: 3\r\n\r\n",
      egress());
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\nHost: h\r\nX-Kept: 3\r\n"
            "x-request-id: 11111111-2222-4333-8444-555555555555\r\n\r\n");
}

TEST(EncodeRequestHead, ConnectionCannotStripHostOrFraming) {
  // Naming Host or Content-Length in Connection must not lose them: both are re-emitted
  // from the parse.
  EXPECT_EQ(encode_request("POST /p HTTP/1.1\r\nHost: h\r\nConnection: host, content-length\r\n"
                           "Content-Length: 3\r\n\r\n",
                           egress()),
            "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
            "x-request-id: 11111111-2222-4333-8444-555555555555\r\n\r\n");
}

TEST(EncodeRequestHead, ChunkedFramingReEmitted) {
  RequestContext context = egress();
  context.headers.request_id = false;
  EXPECT_EQ(encode_request("POST /u HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n"
                           "Expect: 100-continue\r\n\r\n",
                           context),
            "POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
}

TEST(EncodeRequestHead, DuplicateIdenticalContentLengthBecomesOne) {
  RequestContext context = egress();
  context.headers.request_id = false;
  EXPECT_EQ(encode_request("PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
                           "Content-Length: 0\r\n\r\n",
                           context),
            "PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
}

TEST(EncodeRequestHead, AbsoluteFormBecomesOriginForm) {
  RequestContext context = egress();
  context.headers.request_id = false;
  EXPECT_EQ(
      encode_request("GET http://Orders.ns:8080/a/b?c=d HTTP/1.1\r\nHost: orders.ns:8080\r\n\r\n",
                     context),
      "GET /a/b?c=d HTTP/1.1\r\nHost: Orders.ns:8080\r\n\r\n");
  EXPECT_EQ(encode_request("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", context),
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(encode_request("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n", context),
            "GET /?q HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(EncodeRequestHead, Http10WithoutHostGetsDefaultHostAndGoesUpAs11) {
  RequestContext context = egress();
  context.headers.request_id = false;
  context.default_host = "orders.ns";
  EXPECT_EQ(encode_request("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", context),
            "GET /x HTTP/1.1\r\nHost: orders.ns\r\n\r\n");
}

// The encoders write into room estimated from the head; what the estimate leaves out (a
// default Host of any length) grows the buffer, and what the buffer held stays in front.
TEST(EncodeRequestHead, AppendsAfterWhatTheBufferHoldsAndGrowsPastTheEstimate) {
  RequestContext context = egress();
  context.headers.request_id = false;
  const std::string host(5000, 'h');
  context.default_host = host;
  RequestParser parser;
  ASSERT_EQ(parser.parse("GET /x HTTP/1.0\r\nAccept: */*\r\nX-A: 1\r\n\r\n").event, Event::kHead);
  std::string out = "queued before";
  encode_request_head(parser.head(), context, out);
  EXPECT_EQ(out,
            "queued beforeGET /x HTTP/1.1\r\nHost: " + host + "\r\nAccept: */*\r\nX-A: 1\r\n\r\n");
  ResponseParser response;
  ASSERT_EQ(response.parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").event, Event::kHead);
  ResponseContext plain;
  plain.headers.server = false;
  plain.headers.upstream_service_time = false;
  encode_response_head(response.head(), plain, out);
  EXPECT_EQ(out, "queued beforeGET /x HTTP/1.1\r\nHost: " + host +
                     "\r\nAccept: */*\r\nX-A: 1\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST(EncodeRequestHead, UpgradeForwardedOrNot) {
  RequestContext context = egress();
  context.headers.request_id = false;
  const std::string request =
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: abc\r\n\r\n";
  EXPECT_EQ(encode_request(request, context),
            "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: abc\r\n"
            "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n");
  context.forward_upgrade = false;
  EXPECT_EQ(encode_request(request, context),
            "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: abc\r\n\r\n");
}

TEST(EncodeRequestHead, IngressAddsForwardedHeaders) {
  EXPECT_EQ(encode_request("GET / HTTP/1.1\r\nHost: h\r\n\r\n", ingress()),
            "GET / HTTP/1.1\r\nHost: h\r\n"
            "x-request-id: 11111111-2222-4333-8444-555555555555\r\n"
            "x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: https\r\n\r\n");
}

TEST(EncodeRequestHead, ForwardedForAppendsToEveryReceivedValue) {
  RequestContext context = ingress("::1");
  context.headers.request_id = false;
  EXPECT_EQ(encode_request("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n"
                           "A: b\r\nx-forwarded-for: 3.3.3.3\r\nX-Forwarded-Proto: http\r\n\r\n",
                           context),
            "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n"
            "x-forwarded-for: 1.1.1.1, 2.2.2.2, 3.3.3.3, ::1\r\nx-forwarded-proto: https\r\n\r\n");
}

TEST(EncodeRequestHead, ForwardedHeadersSwitchedOffOrEgressPassThrough) {
  const std::string request =
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: http\r\n\r\n";
  const std::string passed =
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: http\r\n\r\n";
  RequestContext context = ingress();
  context.headers.request_id = false;
  context.headers.forwarded = false;
  EXPECT_EQ(encode_request(request, context), passed);
  RequestContext out_bound = egress();
  out_bound.headers.request_id = false;
  EXPECT_EQ(encode_request(request, out_bound), passed);
}

TEST(EncodeRequestHead, ForwardedForNamedInConnectionIsReplacedNotJoined) {
  RequestContext context = ingress();
  context.headers.request_id = false;
  EXPECT_EQ(encode_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: x-forwarded-for\r\n"
                           "X-Forwarded-For: 6.6.6.6\r\n\r\n",
                           context),
            "GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for: 10.0.0.9\r\n"
            "x-forwarded-proto: https\r\n\r\n");
}

TEST(EncodeRequestHead, OnlyATrustedDownstreamKeepsItsForwardedProto) {
  // Behind a load balancer that terminated plain HTTP: the app must see http to redirect.
  const std::string claimed =
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\nX-Forwarded-For: "
      "203.0.113.7\r\n\r\n";
  RequestContext context = ingress();
  context.headers.request_id = false;
  context.trusted_downstream = true;
  EXPECT_EQ(encode_request(claimed, context),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\n"
            "x-forwarded-for: 203.0.113.7, 10.0.0.9\r\n\r\n");
  // Trusted but silent: https, as for anyone.
  EXPECT_EQ(encode_request("GET / HTTP/1.1\r\nHost: h\r\n\r\n", context),
            "GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for: 10.0.0.9\r\n"
            "x-forwarded-proto: https\r\n\r\n");
  // Named in Connection, it is hop-by-hop: removed, and ours added.
  EXPECT_EQ(encode_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: x-forwarded-proto\r\n"
                           "X-Forwarded-Proto: http\r\n\r\n",
                           context),
            "GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for: 10.0.0.9\r\n"
            "x-forwarded-proto: https\r\n\r\n");
  // An untrusted client cannot claim a scheme.
  context.trusted_downstream = false;
  EXPECT_EQ(encode_request(claimed, context),
            "GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for: 203.0.113.7, 10.0.0.9\r\n"
            "x-forwarded-proto: https\r\n\r\n");
}

TEST(TargetPath, StripsQueryAndAuthority) {
  RequestParser parser;
  ASSERT_EQ(parser.parse("GET http://h:1/a/b?q=1 HTTP/1.1\r\nHost: h:1\r\n\r\n").event,
            Event::kHead);
  EXPECT_EQ(target_path(parser.head()), "/a/b");
  RequestParser origin;
  ASSERT_EQ(origin.parse("GET /x?y HTTP/1.1\r\nHost: h\r\n\r\n").event, Event::kHead);
  EXPECT_EQ(target_path(origin.head()), "/x");
  RequestParser star;
  ASSERT_EQ(star.parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").event, Event::kHead);
  EXPECT_EQ(target_path(star.head()), "*");
}

// ---------------------------------------------------------------- responses

ResponseContext response_context() {
  ResponseContext context;
  context.upstream_service_time_ms = 7;
  return context;
}

TEST(EncodeResponseHead, ContentLengthResponseGainsServerAndServiceTime) {
  const ResponseResult r = encode_response(
      "HTTP/1.1 200 OK\r\nServer: gunicorn\r\nContent-Type: text/html\r\nContent-Length: 12\r\n"
      "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nx-upstream-service-time: 99\r\n\r\n",
      response_context());
  EXPECT_EQ(r.bytes,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n"
            "server: ringside\r\nx-upstream-service-time: 7\r\n\r\n");
  EXPECT_EQ(r.plan.framing, BodyFraming::kContentLength);
  EXPECT_FALSE(r.plan.close);
}

TEST(EncodeResponseHead, AddedHeadersSwitchedOffKeepTheUpstreams) {
  ResponseContext context = response_context();
  context.headers.server = false;
  context.headers.upstream_service_time = false;
  const ResponseResult r = encode_response(
      "HTTP/1.1 404 Nope\r\nServer: gunicorn\r\nContent-Length: 0\r\n\r\n", context);
  EXPECT_EQ(r.bytes, "HTTP/1.1 404 Nope\r\nServer: gunicorn\r\nContent-Length: 0\r\n\r\n");
}

TEST(EncodeResponseHead, ChunkedToHttp11StaysChunkedToHttp10Closes) {
  ResponseContext context = response_context();
  context.headers.upstream_service_time = false;
  const std::string response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n";
  ResponseResult r = encode_response(response, context);
  EXPECT_EQ(r.bytes, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nserver: ringside\r\n\r\n");
  EXPECT_EQ(r.plan.framing, BodyFraming::kChunked);
  EXPECT_FALSE(r.plan.close);

  context.client_version = Version::kHttp10;
  r = encode_response(response, context);
  EXPECT_EQ(r.bytes, "HTTP/1.1 200 OK\r\nConnection: close\r\nserver: ringside\r\n\r\n");
  EXPECT_EQ(r.plan.framing, BodyFraming::kUntilClose);
  EXPECT_TRUE(r.plan.close);
}

TEST(EncodeResponseHead, UntilCloseBodyIsChunkedForHttp11Clients) {
  ResponseContext context = response_context();
  context.headers.server = false;
  context.headers.upstream_service_time = false;
  ResponseResult r = encode_response("HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n", context);
  EXPECT_EQ(r.bytes, "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(r.plan.framing, BodyFraming::kChunked);
  EXPECT_FALSE(r.plan.close);
}

TEST(EncodeResponseHead, Http10KeepAliveClientIsToldSo) {
  ResponseContext context = response_context();
  context.client_version = Version::kHttp10;
  context.headers.server = false;
  context.headers.upstream_service_time = false;
  EXPECT_EQ(encode_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", context).bytes,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n");
}

TEST(EncodeResponseHead, CloseWhenTheDownstreamCloses) {
  ResponseContext context = response_context();
  context.close = true;
  context.headers.upstream_service_time = false;
  const ResponseResult r =
      encode_response("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", context);
  EXPECT_EQ(r.bytes,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n"
            "server: ringside\r\n\r\n");
  EXPECT_TRUE(r.plan.close);
}

TEST(EncodeResponseHead, HeadAnd304KeepTheirContentLength) {
  ResponseContext context = response_context();
  context.headers.server = false;
  context.headers.upstream_service_time = false;
  context.request_is_head = true;
  ResponseResult r = encode_response("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", context,
                                     RequestKind::kHead);
  EXPECT_EQ(r.bytes, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  EXPECT_EQ(r.plan.framing, BodyFraming::kNone);

  context.request_is_head = false;
  r = encode_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n",
                      context);
  EXPECT_EQ(r.bytes, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n");
  EXPECT_EQ(r.plan.framing, BodyFraming::kNone);
}

TEST(EncodeResponseHead, SwitchingProtocolsKeepsUpgrade) {
  ResponseContext context = response_context();
  context.headers.upstream_service_time = false;
  const ResponseResult r = encode_response(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Accept: xyz\r\n\r\n",
      context);
  EXPECT_EQ(r.bytes,
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: xyz\r\n"
            "Connection: upgrade\r\nUpgrade: websocket\r\nserver: ringside\r\n\r\n");
  EXPECT_EQ(r.plan.framing, BodyFraming::kTunnel);
}

TEST(EncodeResponseHead, InterimResponseGetsNothingAdded) {
  const ResponseResult r =
      encode_response("HTTP/1.1 100 Continue\r\nConnection: x\r\nX: 1\r\n\r\n", response_context());
  EXPECT_EQ(r.bytes, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(r.plan.framing, BodyFraming::kNone);
}

TEST(EncodeResponseHead, MissingReasonGetsTheStandardOne) {
  ResponseContext context = response_context();
  context.headers.server = false;
  context.headers.upstream_service_time = false;
  EXPECT_EQ(encode_response("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", context).bytes,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
}

// ---------------------------------------------------------------- bodies

TEST(Chunked, ChunksAndLastChunkWithTrailers) {
  std::string out;
  append_chunk(out, "hello");
  append_chunk(out, "");  // never a premature zero chunk
  append_chunk(out, std::string(300, 'x'));
  const Field trailers[] = {{"X-Sum", "abc"}, {"Connection", "x-hop"}, {"x-hop", "1"}};
  append_last_chunk(out, trailers);
  EXPECT_EQ(out, "5\r\nhello\r\n12c\r\n" + std::string(300, 'x') + "\r\n0\r\nX-Sum: abc\r\n\r\n");

  std::string framing;
  append_chunk_header(framing, 0x10000);
  append_chunk_end(framing);
  EXPECT_EQ(framing, "10000\r\n\r\n");
}

TEST(Chunked, RoundTripsThroughTheParser) {
  std::string message = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  append_chunk(message, "abc");
  append_chunk(message, std::string(5000, 'z'));
  append_last_chunk(message, {});
  ResponseParser parser;
  std::string_view input = message;
  std::string body;
  bool complete = false;
  while (!complete) {
    const Step step = parser.parse(input);
    input.remove_prefix(step.consumed);
    ASSERT_NE(step.event, Event::kError) << parser.error().reason;
    ASSERT_NE(step.event, Event::kNeedMore);
    if (step.event == Event::kBody) body += step.body;
    complete = step.event == Event::kMessageComplete;
  }
  EXPECT_EQ(body, "abc" + std::string(5000, 'z'));
  EXPECT_TRUE(input.empty());
}

TEST(ContentLengthCounter, NeverTakesMoreThanTheLength) {
  ContentLengthCounter counter(10);
  EXPECT_EQ(counter.accept(4), 4u);
  EXPECT_FALSE(counter.complete());
  EXPECT_EQ(counter.accept(100), 6u);
  EXPECT_TRUE(counter.complete());
  EXPECT_EQ(counter.accept(5), 0u);
  EXPECT_EQ(counter.remaining(), 0u);
}

// ---------------------------------------------------------------- local responses

TEST(LocalResponse, ExactBytes) {
  LocalResponse response;
  response.status = local_status(LocalCause::kUpstreamConnectTimeout);
  response.body = local_body(LocalCause::kUpstreamConnectTimeout);
  response.request_id = "rid";
  std::string out;
  make_local_response(response, out);
  EXPECT_EQ(out,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
            "content-length: 25\r\nserver: ringside\r\nx-request-id: rid\r\n\r\n"
            "upstream connect timeout\n");
}

TEST(LocalResponse, ParseErrorClosesAndHeadHasNoBody) {
  LocalResponse response = local_response_for({400, "Transfer-Encoding with Content-Length"});
  response.server_header = false;
  std::string out;
  make_local_response(response, out);
  EXPECT_EQ(out,
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 38\r\n"
            "connection: close\r\n\r\nTransfer-Encoding with Content-Length\n");
  response.head_request = true;
  out.clear();
  make_local_response(response, out);
  EXPECT_EQ(out,
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 38\r\n"
            "connection: close\r\n\r\n");
}

TEST(LocalResponse, EveryCauseParsesBackWithItsStatusAndBody) {
  for (int c = 0; c <= static_cast<int>(LocalCause::kRequestTimeout); ++c) {
    const auto cause = static_cast<LocalCause>(c);
    LocalResponse response;
    response.status = local_status(cause);
    response.body = local_body(cause);
    response.close = true;
    std::string out;
    make_local_response(response, out);
    ResponseParser parser;
    std::string_view input = out;
    Step step = parser.parse(input);
    ASSERT_EQ(step.event, Event::kHead) << out;
    EXPECT_EQ(parser.head().status, response.status);
    EXPECT_FALSE(parser.head().keep_alive);
    EXPECT_NE(standard_reason(response.status), "");
    input.remove_prefix(step.consumed);
    step = parser.parse(input);
    ASSERT_EQ(step.event, Event::kBody);
    EXPECT_EQ(step.body, std::string(response.body) + "\n");
  }
  EXPECT_EQ(local_status(LocalCause::kRequestTimeout), 504);
  EXPECT_EQ(local_status(LocalCause::kRequestHeaderTimeout), 408);
  EXPECT_EQ(local_status(LocalCause::kUpstreamReset), 502);
}

// ---------------------------------------------------------------- request ids

bool is_uuid_v4(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return id[14] == '4' && (id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
}

TEST(RequestId, WellFormedAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const RequestId id = generate_request_id();
    ASSERT_TRUE(is_uuid_v4(id.view())) << id.view();
    seen.insert(std::string(id.view()));
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(RequestId, FoundInAnyCase) {
  const Field fields[] = {{"Host", "h"}, {"X-REQUEST-ID", "abc"}, {"x-request-id", "def"}};
  EXPECT_EQ(find_request_id(fields), "abc");
  EXPECT_EQ(find_request_id(std::span<const Field>(fields, 1)), "");
}

// ---------------------------------------------------------------- retries

TEST(Retry, DecisionTable) {
  struct Row {
    std::string_view method;
    bool body_started;
    unsigned retries_done;
    RetryReason reason;
    RetryVerdict expected;
  };
  const Row rows[] = {
      {"GET", false, 0, RetryReason::kConnectFailure, RetryVerdict::kRetry},
      {"GET", false, 1, RetryReason::kResetBeforeResponse, RetryVerdict::kRetry},
      {"GET", false, 2, RetryReason::kStatus503, RetryVerdict::kNo},  // limit 2 reached
      {"HEAD", false, 0, RetryReason::kStatus503, RetryVerdict::kRetry},
      {"OPTIONS", false, 0, RetryReason::kStatus503, RetryVerdict::kRetry},
      {"TRACE", false, 0, RetryReason::kStatus503, RetryVerdict::kRetry},
      {"PUT", false, 0, RetryReason::kResetBeforeResponse, RetryVerdict::kRetry},
      {"DELETE", false, 0, RetryReason::kResetBeforeResponse, RetryVerdict::kRetry},
      {"PUT", true, 0, RetryReason::kResetBeforeResponse, RetryVerdict::kNo},
      {"POST", false, 0, RetryReason::kResetBeforeResponse, RetryVerdict::kNo},
      {"POST", false, 0, RetryReason::kStatus503, RetryVerdict::kNo},
      {"PATCH", false, 0, RetryReason::kStatus503, RetryVerdict::kNo},
      {"get", false, 0, RetryReason::kStatus503, RetryVerdict::kNo},  // methods are case-sensitive
      {"POST", false, 0, RetryReason::kConnectFailure, RetryVerdict::kRetry},
      {"POST", true, 0, RetryReason::kConnectFailure, RetryVerdict::kNo},
      {"POST", false, 2, RetryReason::kConnectFailure, RetryVerdict::kNo},
      {"GET", false, 0, RetryReason::kOther, RetryVerdict::kNo},
      {"GET", false, 9, RetryReason::kReusedConnectionClosed, RetryVerdict::kRetryUncounted},
      {"POST", false, 9, RetryReason::kReusedConnectionClosed, RetryVerdict::kRetryUncounted},
      {"POST", true, 0, RetryReason::kReusedConnectionClosed, RetryVerdict::kNo},
  };
  for (const Row& row : rows) {
    RetryAttempt attempt{row.method, row.body_started, row.retries_done, row.reason};
    EXPECT_EQ(may_retry(attempt, 2), row.expected)
        << row.method << " body_started=" << row.body_started << " done=" << row.retries_done
        << " reason=" << static_cast<int>(row.reason);
  }
  EXPECT_EQ(may_retry({"GET", false, 0, RetryReason::kConnectFailure}, 0), RetryVerdict::kNo);
}

}  // namespace
}  // namespace ringside::http
