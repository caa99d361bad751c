// The gRPC status accounting as the reports show it: merged across threads, by status.
#include "report.h"

#include <gtest/gtest.h>

namespace ringside::bench {
namespace {

ClientOptions grpc_options() {
  ClientOptions options;
  std::string error;
  options.url = *parse_url("http://127.0.0.1:50051/", &error);
  options.http2 = true;
  options.streams = 10;
  options.grpc_path = "/pkg.Svc/Method";
  options.message_size = 64;
  return options;
}

// Two threads' stats: 3 OK calls, 2 UNAVAILABLE, 1 without a grpc-status.
RunResult grpc_result() {
  RunStats first, second;
  first.grpc_status[0] = 2;
  first.grpc_status[14] = 2;
  first.errors.grpc = 2;
  second.grpc_status[0] = 1;
  second.grpc_status[kGrpcStatusMissing] = 1;
  second.errors.grpc = 1;
  second.errors.status = 4;
  RunResult result;
  result.elapsed_s = 1;
  result.stats.merge(first);
  result.stats.merge(second);
  return result;
}

TEST(Report, MergeSumsGrpcStatuses) {
  RunResult result = grpc_result();
  EXPECT_EQ(result.stats.grpc_status[0], 3u);
  EXPECT_EQ(result.stats.grpc_status[14], 2u);
  EXPECT_EQ(result.stats.grpc_status[kGrpcStatusMissing], 1u);
  EXPECT_EQ(result.stats.errors.grpc, 3u);
  EXPECT_EQ(result.stats.errors.total(), 7u);  // grpc failures count as errors
}

TEST(Report, TextListsGrpcFailuresByStatus) {
  std::string text = format_text_report(grpc_options(), grpc_result());
  EXPECT_NE(text.find("gRPC /pkg.Svc/Method, 10 streams each"), std::string::npos) << text;
  EXPECT_NE(text.find("gRPC calls: 3 OK, 3 failed (UNAVAILABLE 2, missing 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("status 4, grpc 3)"), std::string::npos) << text;
}

TEST(Report, JsonHasProtocolStreamsAndGrpcStatuses) {
  std::string json = format_json_report(grpc_options(), grpc_result());
  EXPECT_NE(json.find("\"protocol\": \"grpc\",\n  \"streams\": 10,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"grpc\": {\"method\": \"/pkg.Svc/Method\", \"message_size\": 64, "
                      "\"ok\": 3, \"failed\": 3, \"by_status\": {\"OK\": 3, \"UNAVAILABLE\": 2, "
                      "\"missing\": 1}},"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"status\": 4, \"grpc\": 3}"), std::string::npos) << json;
}

TEST(Report, Http1JsonHasNoGrpcObject) {
  ClientOptions options;
  std::string error;
  options.url = *parse_url("http://127.0.0.1:8080/", &error);
  std::string json = format_json_report(options, RunResult{});
  EXPECT_NE(json.find("\"protocol\": \"http/1.1\",\n  \"streams\": 1,"), std::string::npos);
  EXPECT_EQ(json.find("\"grpc\": {"), std::string::npos);
}

}  // namespace
}  // namespace ringside::bench
