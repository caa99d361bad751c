// gRPC status codes, content type, grpc-timeout and the status of the proxy's own replies
// (include/ringside/grpc.h); the statistics per method (include/ringside/grpc_stats.h).
#include "ringside/grpc.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "ringside/grpc_stats.h"

namespace ringside::grpc {
namespace {

TEST(Grpc, ContentType) {
  EXPECT_TRUE(is_grpc_content_type("application/grpc"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+proto"));
  EXPECT_TRUE(is_grpc_content_type("Application/GRPC;charset=utf-8"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web"));  // a different protocol
  EXPECT_FALSE(is_grpc_content_type("application/grpcx"));
  EXPECT_FALSE(is_grpc_content_type("application/json"));
  EXPECT_FALSE(is_grpc_content_type(""));
}

TEST(Grpc, TimeoutParsesEveryUnitRoundingUp) {
  EXPECT_EQ(parse_timeout_ms("1H"), 3'600'000u);
  EXPECT_EQ(parse_timeout_ms("2M"), 120'000u);
  EXPECT_EQ(parse_timeout_ms("3S"), 3'000u);
  EXPECT_EQ(parse_timeout_ms("250m"), 250u);
  EXPECT_EQ(parse_timeout_ms("1500u"), 2u);
  EXPECT_EQ(parse_timeout_ms("1n"), 1u);  // a deadline, however short, is not none
  EXPECT_EQ(parse_timeout_ms("0m"), 0u);
  EXPECT_EQ(parse_timeout_ms("99999999S"), 99'999'999'000u);
}

TEST(Grpc, TimeoutRefusesWhatTheSpecDoesNotAllow) {
  for (const char* bad : {"", "m", "10", "10x", "123456789m", "-1m", "1.5S", " 1S", "1s"}) {
    EXPECT_FALSE(parse_timeout_ms(bad).has_value()) << bad;
  }
}

TEST(Grpc, TimeoutFormatsInTheSmallestUnitThatFits) {
  char out[9];
  auto format = [&out](uint64_t ms) { return std::string(out, format_timeout_ms(ms, out)); };
  EXPECT_EQ(format(1), "1m");
  EXPECT_EQ(format(99'999'999), "99999999m");
  EXPECT_EQ(format(100'000'000), "100000S");
  EXPECT_EQ(format(100'000'001), "100001S");  // rounded up, never shorter than left
  EXPECT_EQ(format(99'999'999'999'999), "27777778H");
  for (uint64_t ms : {1ull, 999ull, 123'456'789ull, 10'000'000'000ull}) {
    EXPECT_GE(*parse_timeout_ms(format(ms)), ms) << ms;
  }
}

TEST(Grpc, Status) {
  EXPECT_EQ(parse_status("0"), Status::kOk);
  EXPECT_EQ(parse_status("14"), Status::kUnavailable);
  EXPECT_EQ(parse_status("16"), Status::kUnauthenticated);
  EXPECT_FALSE(parse_status("17").has_value());
  EXPECT_FALSE(parse_status("").has_value());
  EXPECT_FALSE(parse_status("014").has_value());
  EXPECT_FALSE(parse_status("x").has_value());
  EXPECT_EQ(status_name(Status::kDeadlineExceeded), "DEADLINE_EXCEEDED");
  EXPECT_EQ(status_name(static_cast<Status>(40)), "UNKNOWN");
}

TEST(Grpc, TheProxysFailuresMapToTheirStatus) {
  EXPECT_EQ(status_for_http(503), Status::kUnavailable);  // no healthy upstream, connect failure
  EXPECT_EQ(status_for_http(502), Status::kUnavailable);  // upstream reset
  EXPECT_EQ(status_for_http(504), Status::kDeadlineExceeded);
  EXPECT_EQ(status_for_http(408), Status::kDeadlineExceeded);
  EXPECT_EQ(status_for_http(413), Status::kResourceExhausted);
  EXPECT_EQ(status_for_http(431), Status::kResourceExhausted);
  EXPECT_EQ(status_for_http(400), Status::kInternal);
  EXPECT_EQ(status_for_http(501), Status::kInternal);
  EXPECT_EQ(status_for_http(403), Status::kPermissionDenied);
  EXPECT_EQ(status_for_http(401), Status::kUnauthenticated);
  EXPECT_EQ(status_for_http(404), Status::kUnimplemented);
  EXPECT_EQ(status_for_http(429), Status::kUnavailable);
}

TEST(Grpc, MessageIsPercentEncoded) {
  std::string out;
  percent_encode_message("no healthy upstream", out);
  EXPECT_EQ(out, "no healthy upstream");
  out.clear();
  percent_encode_message("100% \xc3\xa9\n", out);
  EXPECT_EQ(out, "100%25 %C3%A9%0A");
}

TEST(GrpcStats, MessagesAreCountedAcrossAnySplit) {
  // Three messages: 3 bytes, 0 bytes, 70,000 bytes.
  std::string stream;
  for (uint32_t length : {3u, 0u, 70'000u}) {
    stream += '\0';
    for (int shift : {24, 16, 8, 0}) stream += static_cast<char>((length >> shift) & 0xff);
    stream.append(length, 'x');
  }
  for (size_t chunk : {1ul, 2ul, 5ul, 7ul, 4096ul, stream.size()}) {
    MessageCounter counter;
    uint64_t messages = 0;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      messages += counter.feed(std::string_view(stream).substr(at, chunk));
    }
    EXPECT_EQ(messages, 3u) << "chunks of " << chunk;
  }
}

TEST(GrpcStats, MethodNames) {
  EXPECT_TRUE(is_method_name("/test.Echo/Unary"));
  EXPECT_TRUE(is_method_name("/grpc.health.v1.Health/Check"));
  EXPECT_FALSE(is_method_name("/only-one-part"));
  EXPECT_FALSE(is_method_name("/a/b/c"));
  EXPECT_FALSE(is_method_name("/a//"));
  EXPECT_FALSE(is_method_name("test.Echo/Unary"));
  EXPECT_FALSE(is_method_name("/test.Echo/Un ary"));
  EXPECT_FALSE(is_method_name("/test.Echo/Unary?x=1"));
  EXPECT_FALSE(is_method_name("/x/" + std::string(200, 'a')));
}

TEST(GrpcStats, TheTableIsBoundedAndOthersCountTogether) {
  auto table = std::make_unique<MethodTable>();
  MethodStats* first = table->find_or_add("/svc.A/M0");
  EXPECT_EQ(table->find_or_add("/svc.A/M0"), first);  // found again, not added twice
  for (size_t i = 1; i < MethodTable::kMethods; ++i) {
    EXPECT_NE(table->find_or_add("/svc.A/M" + std::to_string(i)), first);
  }
  MethodStats* other = table->find_or_add("/svc.A/OneTooMany");
  EXPECT_EQ(table->find_or_add("/svc.A/AnotherOne"), other);
  EXPECT_EQ(table->find_or_add("not a method"), other);
  size_t named = 0;
  bool saw_other = false;
  table->for_each([&](std::string_view name, const MethodStats&) {
    if (name == "other") {
      saw_other = true;
    } else {
      ++named;
    }
  });
  EXPECT_EQ(named, MethodTable::kMethods);
  EXPECT_TRUE(saw_other);
}

TEST(GrpcStats, RenderedPerServiceAndMethodSummedOverWorkers) {
  GrpcStatsRegistry registry(2, {"orders.ns"});
  for (unsigned w = 0; w < 2; ++w) {
    MethodStats* m = registry.tables[w][0]->find_or_add("/orders.Orders/Get");
    m->calls.add();
    m->answers[static_cast<size_t>(Status::kUnavailable)].add();
    m->duration.record(20);
    m->request_messages.add(2);
  }
  PrometheusWriter writer;
  render_grpc_stats(registry, writer);
  const std::string& text = writer.text();
  const std::string labels = "{service=\"orders.ns\",method=\"/orders.Orders/Get\"";
  EXPECT_NE(text.find("ringside_grpc_calls_total" + labels + "} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("ringside_grpc_answers_total" + labels + ",grpc_code=\"UNAVAILABLE\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ringside_grpc_call_duration_seconds_count" + labels + "} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ringside_grpc_request_messages_total" + labels + "} 4"), std::string::npos)
      << text;
  // No call at all: nothing rendered (no families without samples).
  GrpcStatsRegistry empty(1, {"orders.ns"});
  PrometheusWriter nothing;
  render_grpc_stats(empty, nothing);
  EXPECT_EQ(nothing.text(), "");
}

}  // namespace
}  // namespace ringside::grpc
