// The proxy's per-request work allocates nothing once warm: encoding both heads, chunk
// framing, a local response, a request id, a route lookup and an access-log line all
// write into reused strings. A replaced global operator new counts allocations.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "count_allocations.h"
#include "ringside/access_log.h"
#include "ringside/http.h"
#include "ringside/http_proxy.h"
#include "ringside/http_route.h"

using ringside::testing::g_allocations;

namespace ringside::http {
namespace {

TEST(ProxyAllocations, NoneInSteadyState) {
  const std::string request =
      "GET http://orders.ns/api/list?x=1 HTTP/1.1\r\nHost: orders.ns\r\nUser-Agent: curl\r\n"
      "Connection: keep-alive, x-hop\r\nx-hop: 1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n";
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: app\r\nTransfer-Encoding: chunked\r\nConnection: x-a\r\n"
      "x-a: 1\r\n\r\n";
  std::vector<Route> routes(2);
  routes[0].host = "orders.ns";
  routes[0].path_prefix = "/api";
  routes[0].service = "orders-api";
  routes[1].host = "*.ns";
  routes[1].service = "any";
  const RouteTable table(routes);
  AccessLogRing ring(1 << 20);
  AccessLogger logger(ring, AccessLogFormat::kJson, false);

  RequestParser request_parser;
  ResponseParser response_parser;
  std::string out;
  out.reserve(4096);
  size_t checksum = 0;
  auto round = [&] {
    out.clear();
    request_parser.reset();
    response_parser.reset();
    if (request_parser.parse(request).event != Event::kHead) return false;
    const RequestHead& head = request_parser.head();
    const RequestId id = generate_request_id();
    RequestContext request_context;
    request_context.ingress = true;
    request_context.client_address = "10.0.0.9";
    request_context.request_id = id.view();
    encode_request_head(head, request_context, out);
    const Route* route = table.match(head.authority, target_path(head));
    if (route == nullptr) return false;
    checksum += route->service.size();

    if (response_parser.parse(response).event != Event::kHead) return false;
    ResponseContext response_context;
    response_context.upstream_service_time_ms = 12;
    encode_response_head(response_parser.head(), response_context, out);
    append_chunk(out, "hello");
    append_last_chunk(out, {});
    LocalResponse local;
    local.status = local_status(LocalCause::kRequestTimeout);
    local.body = local_body(LocalCause::kRequestTimeout);
    local.request_id = id.view();
    make_local_response(local, out);

    AccessLogEntry entry;
    entry.method = head.method;
    entry.path = head.target;
    entry.status = 200;
    entry.request_id = id.view();
    entry.authority = head.authority;
    logger.log(entry);
    const AccessLogRing::Readable readable = ring.readable();
    ring.release(readable.size());
    checksum += out.size();
    return true;
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(round());  // warm up
  const size_t before = g_allocations.load();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(round());
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_GT(checksum, 0u);
}

}  // namespace
}  // namespace ringside::http
