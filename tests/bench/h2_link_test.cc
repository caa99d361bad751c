// H2Link (the --h2 / --grpc client side) against a server-role ringside::http2::Session in
// memory: what the server receives, and what each way of ending a stream reports.
#include "h2_link.h"

#include <gtest/gtest.h>

#include "../http2/h2_test_util.h"
#include "client.h"

namespace ringside::bench {
namespace {

using http2::test::bytes;
using http2::test::FieldList;
using http2::test::views;

ClientOptions grpc_options() {
  ClientOptions options;
  std::string error;
  options.url = *parse_url("http://127.0.0.1:8080/ignored", &error);
  options.http2 = true;
  options.grpc_path = "/pkg.Svc/Method";
  options.message_size = 10;
  options.headers = {"X-Tenant:  blue "};
  return options;
}

// A server session and an H2Link connected in memory.
struct Wire {
  explicit Wire(const H2Request& request, const http2::Settings& server_settings = {})
      : server(http2::Role::kServer, server_events, server_settings), link(request, {}) {
    server_events.session = &server;
  }

  void pump() {
    for (int turn = 0; turn < 100; ++turn) {
      std::string to_server, to_client;
      link.produce(to_server);
      if (!to_server.empty()) {
        EXPECT_TRUE(server.receive(bytes(to_server)).ok());
      }
      server.produce(to_client);
      if (!to_client.empty()) {
        EXPECT_TRUE(link.receive(bytes(to_client)));
      }
      if (to_server.empty() && to_client.empty()) return;
    }
    ADD_FAILURE() << "the sessions never went quiet";
  }

  // The server answers stream id with head (ending the stream when no body or trailers).
  void respond(int32_t id, const FieldList& head, std::string body = {},
               const FieldList& trailers = {}) {
    const bool end = body.empty() && trailers.empty();
    ASSERT_TRUE(server.submit_response(id, views(head), end).ok());
    if (!body.empty()) {
      ASSERT_TRUE(server.send_data(id, bytes(body), trailers.empty()).ok());
    }
    if (!trailers.empty()) {
      ASSERT_TRUE(server.send_trailers(id, views(trailers)).ok());
    }
    pump();
  }

  http2::test::Recorder server_events;
  http2::Session server;
  H2Link link;
};

// A gRPC request to /pkg.Svc/Method over a fresh wire.
class GrpcLink : public ::testing::Test {
 protected:
  H2Request request_ = build_h2_request(grpc_options());
  Wire wire{request_};
};

TEST(BuildH2Request, GrpcHeadAndFramedBody) {
  H2Request request = build_h2_request(grpc_options());
  EXPECT_TRUE(request.grpc);
  EXPECT_EQ(http2::test::copy(request.head.fields()),
            (FieldList{{":method", "POST"},
                       {":scheme", "http"},
                       {":authority", "127.0.0.1:8080"},
                       {":path", "/pkg.Svc/Method"},
                       {"content-type", "application/grpc"},
                       {"te", "trailers"},
                       {"x-tenant", "blue"}}));
  EXPECT_EQ(request.body, grpc_frame(10));
}

TEST(BuildH2Request, PlainGetUsesTheUrlAndAHostHeaderAsAuthority) {
  ClientOptions options;
  std::string error;
  options.url = *parse_url("https://example.com/a?b=1", &error);
  options.http2 = true;
  options.headers = {"Host: other.example", "Connection: close", "Accept: */*"};
  H2Request request = build_h2_request(options);
  EXPECT_FALSE(request.grpc);
  EXPECT_TRUE(request.body.empty());
  EXPECT_EQ(http2::test::copy(request.head.fields()), (FieldList{{":method", "GET"},
                                                                 {":scheme", "https"},
                                                                 {":path", "/a?b=1"},
                                                                 {":authority", "other.example"},
                                                                 {"accept", "*/*"}}));
}

TEST_F(GrpcLink, GrpcCallWithTrailers) {
  ASSERT_TRUE(wire.link.start(111, 1000));
  EXPECT_EQ(wire.link.in_flight(), 1u);
  wire.pump();
  ASSERT_EQ(wire.server_events.streams.size(), 1u);
  const int32_t id = wire.server_events.streams.begin()->first;
  const auto& received = wire.server_events.streams.begin()->second;
  EXPECT_EQ(received.heads.at(0).at(0), (std::pair<std::string, std::string>{":method", "POST"}));
  EXPECT_EQ(received.body, grpc_frame(10));
  EXPECT_TRUE(received.ended);

  wire.respond(id, {{":status", "200"}, {"content-type", "application/grpc"}}, grpc_frame(3),
               {{"grpc-status", "0"}, {"grpc-message", ""}});
  ASSERT_EQ(wire.link.finished().size(), 1u);
  const H2Outcome& outcome = wire.link.finished()[0];
  EXPECT_EQ(outcome.kind, H2Outcome::Kind::kResponse);
  EXPECT_EQ(outcome.origin, 111u);
  EXPECT_EQ(outcome.status, 200);
  EXPECT_EQ(outcome.grpc_slot, 0);
  EXPECT_EQ(wire.link.in_flight(), 0u);
  wire.link.clear_finished();
  EXPECT_TRUE(wire.link.finished().empty());
}

TEST_F(GrpcLink, GrpcTrailersOnlyAndMissingStatus) {
  ASSERT_TRUE(wire.link.start(1, 1000));
  ASSERT_TRUE(wire.link.start(2, 1000));
  wire.pump();
  ASSERT_EQ(wire.server_events.streams.size(), 2u);
  const int32_t first = wire.server_events.streams.begin()->first;
  const int32_t second = wire.server_events.streams.rbegin()->first;
  // Trailers-Only: the status rides in the only head.
  wire.respond(first, {{":status", "200"}, {"grpc-status", "14"}, {"grpc-message", "down"}});
  // A 200 that ends without any grpc-status.
  wire.respond(second, {{":status", "200"}}, "body");
  ASSERT_EQ(wire.link.finished().size(), 2u);
  EXPECT_EQ(wire.link.finished()[0].grpc_slot, 14);
  EXPECT_EQ(wire.link.finished()[0].origin, 1u);
  EXPECT_EQ(wire.link.finished()[1].grpc_slot, kGrpcStatusMissing);
  EXPECT_EQ(wire.link.finished()[1].status, 200);
}

TEST(H2Link, PlainRequestsReportTheStatus) {
  ClientOptions options;
  std::string error;
  options.url = *parse_url("http://127.0.0.1/", &error);
  options.http2 = true;
  H2Request request = build_h2_request(options);
  Wire wire(request);
  ASSERT_TRUE(wire.link.start(5, 1000));
  wire.pump();
  const int32_t id = wire.server_events.streams.begin()->first;
  EXPECT_TRUE(wire.server_events.streams.begin()->second.body.empty());
  wire.respond(id, {{":status", "503"}}, "busy");
  ASSERT_EQ(wire.link.finished().size(), 1u);
  EXPECT_EQ(wire.link.finished()[0].status, 503);
  EXPECT_EQ(wire.link.finished()[0].grpc_slot, kGrpcStatusMissing);  // not read for plain h2
}

TEST_F(GrpcLink, ServerResetIsReported) {
  ASSERT_TRUE(wire.link.start(7, 1000));
  wire.pump();
  wire.server.reset(wire.server_events.streams.begin()->first, http2::kRefusedStream);
  wire.pump();
  ASSERT_EQ(wire.link.finished().size(), 1u);
  EXPECT_EQ(wire.link.finished()[0].kind, H2Outcome::Kind::kReset);
  EXPECT_EQ(wire.link.finished()[0].code, http2::kRefusedStream);
  EXPECT_EQ(wire.link.in_flight(), 0u);
}

TEST_F(GrpcLink, ExpiredStreamsAreCancelledAndNotReported) {
  ASSERT_TRUE(wire.link.start(0, 50));
  ASSERT_TRUE(wire.link.start(0, 500));
  wire.pump();
  EXPECT_EQ(wire.link.cancel_expired(50), 0u);  // due at 50: not yet expired
  EXPECT_EQ(wire.link.cancel_expired(100), 1u);
  EXPECT_EQ(wire.link.in_flight(), 1u);
  wire.pump();
  EXPECT_TRUE(wire.link.finished().empty());
  int resets = 0;
  for (const auto& [id, stream] : wire.server_events.streams) {
    if (stream.reset) {
      ++resets;
      EXPECT_EQ(stream.reset_code, http2::kCancel);
    }
  }
  EXPECT_EQ(resets, 1);
}

TEST(H2Link, StartStopsAtTheServersStreamLimit) {
  ClientOptions options = grpc_options();
  H2Request request = build_h2_request(options);
  http2::Settings server_settings;
  server_settings.max_concurrent_streams = 2;
  Wire wire(request, server_settings);
  wire.pump();  // the server's SETTINGS arrive
  EXPECT_TRUE(wire.link.start(0, 1000));
  EXPECT_TRUE(wire.link.start(0, 1000));
  EXPECT_FALSE(wire.link.start(0, 1000));
  EXPECT_EQ(wire.link.in_flight(), 2u);
}

TEST_F(GrpcLink, ConnectionErrorFailsTheLink) {
  ASSERT_TRUE(wire.link.start(0, 1000));
  // A protocol error nghttp2 answers with GOAWAY: the failure shows once that is produced.
  (void)wire.link.receive(bytes("this is not HTTP/2 at all, not even a SETTINGS frame"));
  std::string goaway;
  wire.link.produce(goaway);
  EXPECT_FALSE(goaway.empty());
  EXPECT_TRUE(wire.link.failed());
  EXPECT_FALSE(wire.link.receive(bytes("more")));
  EXPECT_FALSE(wire.link.error().empty());
  EXPECT_FALSE(wire.link.start(0, 1000));
}

}  // namespace
}  // namespace ringside::bench
