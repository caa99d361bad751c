// Access log: exact text and JSON lines, escaping of hostile values, timestamps, response
// flags, the SPSC ring (wrap-around, drops when full) and the writer (file, full ring,
// reopen after rotation, a producer racing the writer thread).
#include "ringside/access_log.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace ringside::http {
namespace {

using std::chrono::milliseconds;

AccessLogEntry sample_entry() {
  AccessLogEntry e;
  e.start_time = std::chrono::system_clock::time_point(milliseconds(1714564800123));
  e.method = "GET";
  e.path = "/orders/42?token=secret";
  e.status = 200;
  e.bytes_received = 0;
  e.bytes_sent = 1234;
  e.duration_ms = 5;
  e.upstream_service_time_ms = 3;
  e.upstream_address = "10.0.0.7:15443";
  e.upstream_service = "orders.ns";
  e.retry_count = 1;
  e.request_id = "11111111-2222-4333-8444-555555555555";
  e.authority = "orders.ns";
  e.user_agent = "curl/7.88.1";
  e.listener = "egress_127.0.0.1:15080";
  e.downstream_address = "127.0.0.1:51234";
  return e;
}

TEST(AccessLogFormat, TextLine) {
  std::string out;
  format_access_log_text(sample_entry(), false, out);
  EXPECT_EQ(
      out,
      "[2024-05-01T12:00:00.123Z] \"GET /orders/42 HTTP/1.1\" 200 - 0 1234 5 3 "
      "\"11111111-2222-4333-8444-555555555555\" \"orders.ns\" \"curl/7.88.1\" "
      "\"10.0.0.7:15443\" orders.ns 1 egress_127.0.0.1:15080 127.0.0.1:51234 \"-\" - - \"-\" -\n");
  out.clear();
  format_access_log_text(sample_entry(), true, out);
  EXPECT_NE(out.find("\"GET /orders/42?token=secret HTTP/1.1\""), std::string::npos) << out;
}

TEST(AccessLogFormat, TextLocalResponse) {
  AccessLogEntry e = sample_entry();
  e.status = 503;
  e.response_flags = kFlagUpstreamConnectFailure | kFlagUpstreamRetryLimitExceeded;
  e.details = local_body(LocalCause::kUpstreamConnectTimeout);
  e.upstream_service_time_ms = -1;
  e.upstream_address = "";
  e.user_agent = "";
  std::string out;
  format_access_log_text(e, false, out);
  EXPECT_EQ(out,
            "[2024-05-01T12:00:00.123Z] \"GET /orders/42 HTTP/1.1\" 503 UF,URX 0 1234 5 - "
            "\"11111111-2222-4333-8444-555555555555\" \"orders.ns\" \"-\" \"-\" orders.ns 1 "
            "egress_127.0.0.1:15080 127.0.0.1:51234 \"upstream connect timeout\" - - \"-\" -\n");
}

TEST(AccessLogFormat, PeerIdentityAndAuthzDecisionEndTheLine) {
  AccessLogEntry e = sample_entry();
  e.downstream_tls = 1;
  e.peer_identity = "spiffe://td/ns/a,a.ns";
  e.authz = "denied";
  std::string out;
  format_access_log_text(e, false, out);
  EXPECT_TRUE(out.ends_with(" - tls \"spiffe://td/ns/a,a.ns\" denied\n")) << out;
  out.clear();
  format_access_log_json(e, false, out);
  EXPECT_TRUE(
      out.ends_with(",\"downstream_tls\":true,\"peer_identity\":\"spiffe://td/ns/"
                    "a,a.ns\",\"authz\":\"denied\"}\n"))
      << out;
}

TEST(AccessLogFormat, GrpcStatusEndsTheLine) {
  AccessLogEntry e = sample_entry();
  e.grpc_status = 14;
  std::string out;
  format_access_log_text(e, false, out);
  EXPECT_TRUE(out.ends_with("127.0.0.1:51234 \"-\" 14 - \"-\" -\n")) << out;
  out.clear();
  format_access_log_json(e, false, out);
  EXPECT_TRUE(out.ends_with(
      ",\"grpc_status\":14,\"downstream_tls\":null,\"peer_identity\":null,\"authz\":null}\n"))
      << out;
}

TEST(AccessLogFormat, TextEscapesHostileValues) {
  AccessLogEntry e = sample_entry();
  e.path = "/a\"b\\c\nd\xff";
  e.user_agent = "x\" 200 \"forged";
  std::string out;
  format_access_log_text(e, false, out);
  EXPECT_NE(out.find("\"GET /a\\x22b\\x5cc\\x0ad\\xff HTTP/1.1\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"x\\x22 200 \\x22forged\""), std::string::npos) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // one line
}

TEST(AccessLogFormat, JsonLine) {
  std::string out;
  format_access_log_json(sample_entry(), false, out);
  EXPECT_EQ(
      out,
      "{\"start_time\":\"2024-05-01T12:00:00.123Z\",\"method\":\"GET\",\"path\":\"/orders/42\","
      "\"protocol\":\"HTTP/1.1\",\"response_code\":200,\"response_flags\":\"-\",\"details\":"
      "null,\"bytes_received\":0,\"bytes_sent\":1234,\"duration_ms\":5,"
      "\"upstream_service_time_ms\":3,\"upstream_host\":\"10.0.0.7:15443\","
      "\"upstream_service\":\"orders.ns\",\"retry_count\":1,\"request_id\":"
      "\"11111111-2222-4333-8444-555555555555\",\"authority\":\"orders.ns\",\"user_agent\":"
      "\"curl/7.88.1\",\"listener\":\"egress_127.0.0.1:15080\","
      "\"downstream_remote_address\":\"127.0.0.1:51234\",\"grpc_status\":null,"
      "\"downstream_tls\":null,\"peer_identity\":null,\"authz\":null}\n");
}

TEST(AccessLogFormat, JsonEscapesHostilePath) {
  AccessLogEntry e = sample_entry();
  e.path = std::string_view("/\"},{\"evil\":1\\\n\r\t\x01\x7f\xc3\xa9\0z", 23);
  e.upstream_service_time_ms = -1;
  std::string out;
  format_access_log_json(e, false, out);
  EXPECT_NE(out.find("\"path\":\"/\\\"},{\\\"evil\\\":1\\\\\\n\\r\\t\\u0001\\u007f\\u00c3\\u00a9"
                     "\\u0000z\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"upstream_service_time_ms\":null"), std::string::npos);
  for (char c : out.substr(0, out.size() - 1)) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 && u < 0x7f) << "raw byte " << static_cast<int>(u);
  }
}

TEST(AccessLogFormat, Timestamps) {
  auto at = [](int64_t ms) {
    std::string out;
    append_utc_timestamp(std::chrono::system_clock::time_point(milliseconds(ms)), out);
    return out;
  };
  EXPECT_EQ(at(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(at(951782400123), "2000-02-29T00:00:00.123Z");
  EXPECT_EQ(at(4107542399999), "2100-02-28T23:59:59.999Z");
  EXPECT_EQ(at(-1), "1969-12-31T23:59:59.999Z");
}

TEST(AccessLogFormat, ResponseFlags) {
  std::string out;
  append_response_flags(0, out);
  EXPECT_EQ(out, "-");
  out.clear();
  append_response_flags(
      kFlagNoRoute | kFlagNoHealthyUpstream | kFlagDownstreamConnectionTermination, out);
  EXPECT_EQ(out, "UH,DC,NR");
  EXPECT_EQ(response_flag_for(LocalCause::kRequestTimeout), kFlagUpstreamRequestTimeout);
  EXPECT_EQ(response_flag_for(LocalCause::kUpstreamConnectFailure), kFlagUpstreamConnectFailure);
  EXPECT_EQ(response_flag_for(LocalCause::kUpstreamReset), kFlagUpstreamConnectionTermination);
  EXPECT_EQ(response_flag_for(LocalCause::kNoHealthyUpstream), kFlagNoHealthyUpstream);
  EXPECT_EQ(response_flag_for(LocalCause::kBadRequest), kFlagDownstreamProtocolError);
}

std::string drain(AccessLogRing& ring) {
  const AccessLogRing::Readable r = ring.readable();
  std::string out = std::string(r.first) + std::string(r.second);
  ring.release(r.size());
  return out;
}

TEST(AccessLogRing, DropsWhenFullAndWrapsAround) {
  AccessLogRing ring(64);
  EXPECT_EQ(ring.capacity(), 64u);
  const std::string line(30, 'a');
  EXPECT_TRUE(ring.push(line));
  EXPECT_TRUE(ring.push(line));
  EXPECT_FALSE(ring.push("xxxxx"));  // 60 used, 4 free
  EXPECT_TRUE(ring.push("yyyy"));    // exactly full
  EXPECT_EQ(ring.dropped(), 1u);
  EXPECT_EQ(drain(ring), line + line + "yyyy");
  // Move the indices to 40 (mod 64), so that the next line straddles the end.
  EXPECT_TRUE(ring.push(std::string(40, 'b')));
  EXPECT_EQ(drain(ring), std::string(40, 'b'));
  const std::string wrapped = "0123456789abcdefghijklmnopqrstuvwxyz";
  EXPECT_TRUE(ring.push(wrapped));
  const AccessLogRing::Readable r = ring.readable();
  EXPECT_EQ(r.first, "0123456789abcdefghijklmn");  // 24 bytes up to the end
  EXPECT_EQ(r.second, "opqrstuvwxyz");
  EXPECT_EQ(drain(ring), wrapped);
  EXPECT_FALSE(ring.push(std::string(65, 'z')));  // never fits
  EXPECT_EQ(ring.dropped(), 2u);
  EXPECT_EQ(ring.pushed(), 5u);
}

class AccessLogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ringside-accesslog-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/access.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string dir_, path_;
};

TEST_F(AccessLogWriterTest, FullRingDropsAndCountsNeverBlocks) {
  AccessLogWriter::Options options;
  options.ring_bytes = 256;
  options.flush_interval = std::chrono::hours(1);  // only flush() drains
  std::string detail;
  auto writer = AccessLogWriter::open(path_, 1, options, &detail);
  ASSERT_TRUE(writer.ok()) << detail;
  AccessLogRing& ring = (*writer)->ring(0);
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    char line[32];
    std::snprintf(line, sizeof(line), "line %03d .............\n", i);  // 23 bytes
    accepted += ring.push(line) ? 1 : 0;
  }
  EXPECT_EQ(accepted, 11);  // 256 / 23
  EXPECT_EQ((*writer)->lines_dropped(), 89u);
  (*writer)->flush();
  const std::string text = read(path_);
  EXPECT_EQ(text.size(), 253u);
  EXPECT_EQ(text.substr(0, 23), "line 000 .............\n");
  EXPECT_EQ(text.substr(230), "line 010 .............\n");
  EXPECT_TRUE(ring.push("after\n"));  // room again once drained
  (*writer)->stop();
  EXPECT_EQ(read(path_).substr(253), "after\n");
  EXPECT_EQ((*writer)->bytes_written(), 259u);
  EXPECT_EQ((*writer)->write_errors(), 0u);
}

TEST_F(AccessLogWriterTest, ReopenAfterRotation) {
  AccessLogWriter::Options options;
  options.flush_interval = std::chrono::hours(1);
  auto writer = AccessLogWriter::open(path_, 2, options, nullptr);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->ring(1).push("before\n"));
  (*writer)->flush();
  std::filesystem::rename(path_, path_ + ".1");
  (*writer)->request_reopen();
  ASSERT_TRUE((*writer)->ring(0).push("after\n"));
  (*writer)->flush();
  EXPECT_EQ(read(path_ + ".1"), "before\n");
  EXPECT_EQ(read(path_), "after\n");
}

TEST_F(AccessLogWriterTest, OpenFailureSaysWhy) {
  std::string detail;
  auto writer = AccessLogWriter::open(dir_ + "/no/such/dir/log", 1, {}, &detail);
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(detail.find("No such file or directory"), std::string::npos) << detail;
}

TEST_F(AccessLogWriterTest, ProducerRacingTheWriterThreadLosesNoAcceptedLine) {
  AccessLogWriter::Options options;
  options.ring_bytes = 4096;
  options.flush_interval = milliseconds(1);
  auto writer = AccessLogWriter::open(path_, 1, options, nullptr);
  ASSERT_TRUE(writer.ok());
  AccessLogger logger((*writer)->ring(0), AccessLogFormat::kJson, false);
  AccessLogEntry entry = sample_entry();
  constexpr int kLines = 20000;
  int accepted = 0;
  std::thread producer([&] {
    for (int i = 0; i < kLines; ++i) {
      entry.retry_count = static_cast<uint32_t>(i);
      accepted += logger.log(entry) ? 1 : 0;
    }
  });
  producer.join();
  (*writer)->stop();
  EXPECT_EQ(static_cast<uint64_t>(accepted) + (*writer)->lines_dropped(), uint64_t{kLines});
  std::ifstream in(path_);
  std::string line;
  int lines = 0;
  int last_retry = -1;
  std::string expected_prefix;
  format_access_log_json(sample_entry(), false, expected_prefix);
  expected_prefix = expected_prefix.substr(0, expected_prefix.find("\"retry_count\""));
  while (std::getline(in, line)) {
    ++lines;
    ASSERT_EQ(line.substr(0, expected_prefix.size()), expected_prefix);  // whole lines only
    const int retry = std::stoi(line.substr(line.find("\"retry_count\":") + 14));
    EXPECT_GT(retry, last_retry);  // in order, none twice
    last_retry = retry;
  }
  EXPECT_EQ(lines, accepted);
}

}  // namespace
}  // namespace ringside::http
