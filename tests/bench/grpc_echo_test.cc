// GrpcEcho (the `ringside-bench serve --grpc` app) against a client-role
// ringside::http2::Session in memory: what each kind of request gets back.
#include "grpc_echo.h"

#include <gtest/gtest.h>

#include "../http2/h2_test_util.h"
#include "grpc.h"

namespace ringside::bench {
namespace {

using http2::test::bytes;
using http2::test::FieldList;
using http2::test::views;

FieldList grpc_head(std::string path = "/bench.Echo/Unary",
                    std::string content_type = "application/grpc") {
  return {{":method", "POST"},         {":scheme", "http"},
          {":authority", "127.0.0.1"}, {":path", std::move(path)},
          {"te", "trailers"},          {"content-type", std::move(content_type)}};
}

const FieldList kOkHead = {{":status", "200"}, {"content-type", "application/grpc"}};
const FieldList kOkTrailers = {{"grpc-status", "0"}};

// A client session and the echo server connected in memory.
struct Wire {
  Wire() : client(http2::Role::kClient, client_events) { client_events.session = &client; }

  void pump() {
    for (int turn = 0; turn < 10000; ++turn) {
      std::string to_server, to_client;
      client.produce(to_server);
      if (!to_server.empty()) {
        EXPECT_TRUE(server.receive(bytes(to_server)));
      }
      server.produce(to_client);
      if (!to_client.empty()) {
        EXPECT_TRUE(client.receive(bytes(to_client)).ok());
      }
      if (to_server.empty() && to_client.empty()) return;
    }
    ADD_FAILURE() << "the sessions never went quiet";
  }

  // Opens a stream with head and, unless body is empty, sends body and ends it.
  int32_t call(const FieldList& head, const std::string& body) {
    auto id = client.submit_request(views(head), body.empty());
    EXPECT_TRUE(id.ok());
    if (!body.empty()) {
      EXPECT_TRUE(client.send_data(*id, bytes(body), true).ok());
    }
    return *id;
  }

  const http2::test::Recorder::StreamLog& answer(int32_t id) { return client_events.streams[id]; }

  http2::test::Recorder client_events;
  http2::Session client;
  GrpcEcho server;
};

TEST(GrpcEcho, EchoesTheRequestMessageWithStatusOk) {
  Wire wire;
  const std::string message = grpc_frame(64);
  const int32_t id = wire.call(grpc_head(), message);
  wire.pump();
  const auto& answer = wire.answer(id);
  ASSERT_EQ(answer.heads.size(), 1u);
  EXPECT_EQ(answer.heads[0], kOkHead);
  EXPECT_EQ(answer.body, message);
  EXPECT_EQ(answer.trailers, kOkTrailers);
  EXPECT_TRUE(answer.ended);
  EXPECT_EQ(wire.server.calls(), 1u);
  EXPECT_EQ(wire.server.open_streams(), 0u);
}

TEST(GrpcEcho, AnyPathAndGrpcContentTypeVariants) {
  Wire wire;
  const int32_t a = wire.call(grpc_head("/other.Service/Method"), grpc_frame(3));
  const int32_t b = wire.call(grpc_head("/x.Y/Z", "application/grpc+proto"), grpc_frame(4));
  wire.pump();
  EXPECT_EQ(wire.answer(a).body, grpc_frame(3));
  EXPECT_EQ(wire.answer(a).trailers, kOkTrailers);
  EXPECT_EQ(wire.answer(b).body, grpc_frame(4));
  EXPECT_EQ(wire.server.calls(), 2u);
}

TEST(GrpcEcho, AnEmptyRequestGetsAnEmptyMessage) {
  Wire wire;
  const int32_t id = wire.call(grpc_head(), "");
  wire.pump();
  EXPECT_EQ(wire.answer(id).heads.at(0), kOkHead);
  EXPECT_EQ(wire.answer(id).body, grpc_frame(0));
  EXPECT_EQ(wire.answer(id).trailers, kOkTrailers);
}

TEST(GrpcEcho, AMessageLargerThanTheWindowsIsEchoedWhole) {
  Wire wire;
  const std::string message = grpc_frame(3u << 20);  // past the stream and connection windows
  const int32_t id = wire.call(grpc_head(), message);
  wire.pump();
  EXPECT_EQ(wire.answer(id).body.size(), message.size());
  EXPECT_TRUE(wire.answer(id).body == message);
  EXPECT_EQ(wire.answer(id).trailers, kOkTrailers);
}

TEST(GrpcEcho, ConcurrentStreamsGetTheirOwnMessages) {
  Wire wire;
  std::vector<std::pair<int32_t, std::string>> calls;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 90; ++i) {
      std::string message = grpc_frame(static_cast<size_t>(i));
      std::fill(message.begin() + 5, message.end(), static_cast<char>('a' + i % 26));
      calls.emplace_back(wire.call(grpc_head(), message), message);
    }
    wire.pump();
  }
  for (const auto& [id, message] : calls) {
    EXPECT_EQ(wire.answer(id).body, message) << "stream " << id;
    EXPECT_EQ(wire.answer(id).trailers, kOkTrailers) << "stream " << id;
  }
  EXPECT_EQ(wire.server.calls(), calls.size());
  EXPECT_EQ(wire.server.open_streams(), 0u);
}

TEST(GrpcEcho, OtherRequestsGet404) {
  Wire wire;
  FieldList get = grpc_head();
  get[0].second = "GET";
  const int32_t not_post = wire.call(get, "");
  const int32_t not_grpc = wire.call(grpc_head("/bench.Echo/Unary", "application/json"), "{}");
  const int32_t grpc_web = wire.call(grpc_head("/a.B/C", "application/grpc-web"), grpc_frame(1));
  wire.pump();
  for (int32_t id : {not_post, not_grpc, grpc_web}) {
    ASSERT_EQ(wire.answer(id).heads.size(), 1u) << "stream " << id;
    EXPECT_EQ(wire.answer(id).heads[0].at(0),
              (std::pair<std::string, std::string>{":status", "404"}));
    EXPECT_TRUE(wire.answer(id).body.empty());
    EXPECT_TRUE(wire.answer(id).ended);
  }
  EXPECT_EQ(wire.server.calls(), 0u);
}

TEST(GrpcEcho, ATooLargeRequestIsResourceExhausted) {
  Wire wire;
  const std::string message = grpc_frame(kMaxEchoBody - 4);  // one byte over
  const int32_t id = wire.call(grpc_head(), message);
  wire.pump();
  const auto& answer = wire.answer(id);
  ASSERT_EQ(answer.heads.size(), 1u);
  EXPECT_TRUE(answer.head_end_stream.at(0));  // Trailers-Only
  EXPECT_EQ(grpc_status_slot(views(answer.heads[0])), 8);
  EXPECT_TRUE(answer.body.empty());
  EXPECT_EQ(wire.server.calls(), 0u);
}

TEST(GrpcEcho, AResetCallIsForgotten) {
  Wire wire;
  auto id = wire.client.submit_request(views(grpc_head()), false);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(wire.client.send_data(*id, bytes(std::string_view("\0\0\0", 3)), false).ok());
  wire.pump();
  EXPECT_EQ(wire.server.open_streams(), 1u);
  wire.client.reset(*id, http2::kCancel);
  wire.pump();
  EXPECT_EQ(wire.server.open_streams(), 0u);
  EXPECT_EQ(wire.server.calls(), 0u);
  // The connection still serves calls.
  const int32_t next = wire.call(grpc_head(), grpc_frame(2));
  wire.pump();
  EXPECT_EQ(wire.answer(next).body, grpc_frame(2));
}

TEST(GrpcEcho, GarbageFailsTheConnection) {
  GrpcEcho server;
  EXPECT_FALSE(server.receive(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string out;
  server.produce(out);
  EXPECT_TRUE(server.finished());
}

}  // namespace
}  // namespace ringside::bench
