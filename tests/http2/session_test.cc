// The HTTP/2 codec end to end: a server Session and a client Session in one process.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "h2_test_util.h"
#include "ringside/http2.h"

namespace ringside::http2::test {
namespace {

TEST(Http2Session, PrefaceAndSettingsExchange) {
  Pair p;
  p.pump();
  EXPECT_EQ(p.server_events.connection_errors, 0);
  EXPECT_EQ(p.client_events.connection_errors, 0);
  EXPECT_FALSE(p.server.finished());
  EXPECT_FALSE(p.client.finished());
  EXPECT_EQ(p.client.available_streams(), 100u);
}

TEST(Http2Session, BadPrefaceIsAConnectionError) {
  Recorder events;
  Session server(Role::kServer, events);
  const auto r = server.receive(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kProtocol);
  EXPECT_EQ(r.error().side, Side::kDownstream);
  EXPECT_EQ(events.connection_errors, 1);
  EXPECT_TRUE(server.finished());
  EXPECT_FALSE(server.receive(bytes("more")).ok());
}

TEST(Http2Session, PrefaceSplitByteByByte) {
  RawServer s;
  const std::string in = client_preface();
  for (char c : in) ASSERT_TRUE(s.feed(std::string(1, c)));
  EXPECT_GE(s.count(kSettings), 2);  // ours, and the ack of the client's
}

TEST(Http2Session, RequestAndResponseWithBodiesAndTrailers) {
  Pair p;
  const FieldList req = {{":method", "POST"},
                         {":scheme", "https"},
                         {":authority", "a.test"},
                         {":path", "/upload?x=1"},
                         {"Content-Type", "text/plain"}};
  auto id = p.client.submit_request(views(req), false);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(p.client.send_data(*id, bytes("hello "), false).ok());
  ASSERT_TRUE(p.client.send_data(*id, bytes("world"), false).ok());
  ASSERT_TRUE(p.client.send_trailers(*id, views({{"x-checksum", "abc"}})).ok());
  p.pump();

  auto& got = p.server_events.streams[*id];
  ASSERT_EQ(got.heads.size(), 1u);
  FieldList expected = req;
  expected.back().first = "content-type";  // lower-cased on the wire
  EXPECT_EQ(got.heads[0], expected);
  EXPECT_FALSE(got.head_end_stream[0]);
  EXPECT_EQ(got.body, "hello world");
  EXPECT_EQ(got.trailers, (FieldList{{"x-checksum", "abc"}}));
  EXPECT_TRUE(got.ended);

  ASSERT_TRUE(
      p.server.submit_response(*id, views({{":status", "200"}, {"Server", "t"}}), false).ok());
  ASSERT_TRUE(p.server.send_data(*id, bytes("response body"), false).ok());
  ASSERT_TRUE(p.server.send_trailers(*id, views({{"grpc-status", "0"}})).ok());
  p.pump();

  auto& resp = p.client_events.streams[*id];
  ASSERT_EQ(resp.heads.size(), 1u);
  EXPECT_EQ(resp.heads[0], (FieldList{{":status", "200"}, {"server", "t"}}));  // lower-cased
  EXPECT_EQ(resp.body, "response body");
  EXPECT_EQ(resp.trailers, (FieldList{{"grpc-status", "0"}}));
  EXPECT_TRUE(resp.ended);
  EXPECT_TRUE(resp.closed);
  EXPECT_EQ(resp.close_code, kNoError);
  EXPECT_TRUE(p.server_events.streams[*id].closed);
  EXPECT_EQ(p.client.open_streams(), 0u);
  EXPECT_EQ(p.server.open_streams(), 0u);
  // Our own sessions never send what the peer counts as a glitch.
  EXPECT_EQ(p.server.counters().glitches, 0u);
  EXPECT_EQ(p.client.counters().glitches, 0u);
  EXPECT_EQ(p.server.counters().empty_data_frames, 0u);
}

TEST(Http2Session, TrailersRightAfterTheHead) {
  Pair p;
  auto id = p.client.submit_request(views(get_request()), true);
  ASSERT_TRUE(id.ok());
  p.pump();
  ASSERT_TRUE(p.server.submit_response(*id, views({{":status", "200"}}), false).ok());
  ASSERT_TRUE(p.server.send_trailers(*id, views({{"grpc-status", "13"}})).ok());
  p.pump();
  auto& resp = p.client_events.streams[*id];
  EXPECT_EQ(resp.body, "");
  EXPECT_EQ(resp.trailers, (FieldList{{"grpc-status", "13"}}));
  EXPECT_TRUE(resp.ended);
  EXPECT_EQ(p.client.counters().empty_data_frames, 0u);
}

TEST(Http2Session, ManyConcurrentStreamsInterleaved) {
  Pair p;
  p.pump();
  std::vector<int32_t> ids;
  for (int i = 0; i < 50; ++i) {
    auto id = p.client.submit_request(views(get_request("/s/" + std::to_string(i))), false);
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  // Bodies go out a piece at a time, interleaved across the streams.
  for (int piece = 0; piece < 3; ++piece) {
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string chunk = "[" + std::to_string(i) + ":" + std::to_string(piece) + "]";
      ASSERT_TRUE(p.client.send_data(ids[i], bytes(chunk), piece == 2).ok());
    }
    p.pump();
  }
  EXPECT_EQ(p.server.open_streams(), 50u);
  // Responses in reverse order, each body larger than one frame.
  for (size_t i = ids.size(); i-- > 0;) {
    ASSERT_TRUE(p.server.submit_response(ids[i], views({{":status", "200"}}), false).ok());
    ASSERT_TRUE(
        p.server.send_data(ids[i], bytes(std::string(20000, char('a' + i % 26))), true).ok());
  }
  p.pump();
  for (size_t i = 0; i < ids.size(); ++i) {
    auto& req = p.server_events.streams[ids[i]];
    EXPECT_EQ(req.heads[0][3].second, "/s/" + std::to_string(i));
    const std::string n = std::to_string(i);
    EXPECT_EQ(req.body, "[" + n + ":0][" + n + ":1][" + n + ":2]");
    auto& resp = p.client_events.streams[ids[i]];
    EXPECT_EQ(resp.body, std::string(20000, char('a' + i % 26)));
    EXPECT_TRUE(resp.ended);
    EXPECT_TRUE(resp.closed);
  }
  EXPECT_EQ(p.client.counters().streams_opened, 50u);
  EXPECT_EQ(p.client.counters().streams_closed, 50u);
  EXPECT_EQ(p.server.counters().streams_closed, 50u);
}

TEST(Http2Session, InterimHeadsBeforeTheFinalOne) {
  Pair p;
  FieldList req = get_request();
  req[0].second = "PUT";
  req.emplace_back("expect", "100-continue");
  auto id = p.client.submit_request(views(req), false);
  ASSERT_TRUE(id.ok());
  p.pump();
  ASSERT_TRUE(p.server.submit_interim(*id, views({{":status", "100"}})).ok());
  ASSERT_TRUE(p.server.submit_interim(*id, views({{":status", "103"}, {"link", "</a>"}})).ok());
  p.pump();
  auto& resp = p.client_events.streams[*id];
  ASSERT_EQ(resp.heads.size(), 2u);
  EXPECT_EQ(p.client_events.interim_heads, 2);
  ASSERT_TRUE(p.client.send_data(*id, bytes("body"), true).ok());
  p.pump();
  EXPECT_EQ(p.server_events.streams[*id].body, "body");
  ASSERT_TRUE(p.server.submit_response(*id, views({{":status", "204"}}), true).ok());
  p.pump();
  ASSERT_EQ(resp.heads.size(), 3u);
  EXPECT_EQ(resp.heads[2], (FieldList{{":status", "204"}}));
  EXPECT_EQ(p.client_events.interim_heads, 2);
  EXPECT_TRUE(resp.ended);
  EXPECT_TRUE(resp.trailers.empty());
}

TEST(Http2Session, HeadRequestGetsContentLengthAndNoBody) {
  Pair p;
  FieldList req = get_request();
  req[0].second = "HEAD";
  auto id = p.client.submit_request(views(req), true);
  ASSERT_TRUE(id.ok());
  p.pump();
  EXPECT_TRUE(p.server_events.streams[*id].head_end_stream[0]);
  ASSERT_TRUE(
      p.server.submit_response(*id, views({{":status", "200"}, {"content-length", "1234"}}), true)
          .ok());
  p.pump();
  auto& resp = p.client_events.streams[*id];
  ASSERT_EQ(resp.heads.size(), 1u);
  EXPECT_TRUE(resp.head_end_stream[0]);
  EXPECT_TRUE(resp.ended);
  EXPECT_FALSE(resp.reset);  // content-length without DATA is fine for HEAD
}

TEST(Http2Session, StreamWindowStaysClosedUntilConsume) {
  Pair p;
  p.server_events.auto_consume = false;
  p.pump();
  auto id = p.client.submit_request(views(get_request()), false);
  ASSERT_TRUE(id.ok());
  const std::string body(200 * 1024, 'x');
  ASSERT_TRUE(p.client.send_data(*id, bytes(body), false).ok());
  p.pump();
  auto& got = p.server_events.streams[*id];
  EXPECT_EQ(got.body.size(), 64u * 1024);  // the initial stream window, not one byte more
  EXPECT_EQ(p.client.queued(*id), body.size() - 64 * 1024);
  p.pump();
  EXPECT_EQ(got.body.size(), 64u * 1024);  // nothing opens the window on its own

  // Draining downstream opens it by as much as was drained (nghttp2 sends WINDOW_UPDATE
  // once half the window is consumed).
  p.server.consume(*id, 40 * 1024);
  p.pump();
  EXPECT_EQ(got.body.size(), 104u * 1024);
  size_t consumed = 40 * 1024;
  while (got.body.size() < body.size()) {
    const size_t before = got.body.size();
    p.server.consume(*id, got.body.size() - consumed);
    consumed = got.body.size();
    p.pump();
    ASSERT_GT(got.body.size(), before);
  }
  EXPECT_EQ(got.body, body);
  EXPECT_FALSE(got.ended);
  // The queue ran empty: the owner hears it may read more from the source.
  EXPECT_EQ(p.client_events.drained, std::vector<int32_t>{*id});
  ASSERT_TRUE(p.client.send_data(*id, {}, true).ok());
  p.pump();
  EXPECT_TRUE(got.ended);
}

TEST(Http2Session, ConnectionWindowIsSharedAndGivenBackOnClose) {
  Settings small;
  small.initial_connection_window = 65535;  // the protocol's initial value
  Pair p(small);
  p.server_events.auto_consume = false;
  p.pump();
  auto a = p.client.submit_request(views(get_request("/a")), false);
  auto b = p.client.submit_request(views(get_request("/b")), false);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(p.client.send_data(*a, bytes(std::string(50000, 'a')), true).ok());
  p.pump();
  ASSERT_TRUE(p.client.send_data(*b, bytes(std::string(50000, 'b')), true).ok());
  p.pump();
  const size_t got_b = p.server_events.streams[*b].body.size();
  EXPECT_EQ(50000 + got_b, 65535u);  // the connection window holds b back
  // Stream a is reset without its data ever being consumed: the session gives its bytes
  // back to the connection window, and b flows.
  p.server.reset(*a, kCancel);
  p.pump();
  EXPECT_FALSE(p.server_events.streams[*a].reset);  // the owner's own reset is not echoed
  EXPECT_TRUE(p.server_events.streams[*a].closed);
  EXPECT_TRUE(p.client_events.streams[*a].reset);
  EXPECT_EQ(p.client_events.streams[*a].reset_code, kCancel);
  EXPECT_FALSE(p.client_events.streams[*a].reset_by_us);
  p.server.consume(*b, got_b);
  p.pump();
  p.server.consume(*b, 50000);
  p.pump();
  EXPECT_EQ(p.server_events.streams[*b].body.size(), 50000u);
  EXPECT_TRUE(p.server_events.streams[*b].ended);
}

TEST(Http2Session, ClientRespectsThePeersConcurrencyLimit) {
  Settings server;
  server.max_concurrent_streams = 2;
  Pair p(server);
  p.pump();
  EXPECT_EQ(p.client.available_streams(), 2u);
  auto a = p.client.submit_request(views(get_request()), true);
  auto b = p.client.submit_request(views(get_request()), true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(p.client.available_streams(), 0u);
  auto c = p.client.submit_request(views(get_request()), true);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().kind, ErrorKind::kResource);
  p.pump();
  ASSERT_TRUE(p.server.submit_response(*a, views({{":status", "200"}}), true).ok());
  p.pump();
  EXPECT_EQ(p.client.available_streams(), 1u);
  EXPECT_TRUE(p.client.submit_request(views(get_request()), true).ok());
  EXPECT_EQ(p.server.counters().refused_streams, 0u);
}

TEST(Http2Session, GracefulDrainInTwoSteps) {
  Pair p;
  auto id = p.client.submit_request(views(get_request()), true);
  ASSERT_TRUE(id.ok());
  p.pump();
  p.server.start_drain();
  // Step one: GOAWAY(2^31-1) and a PING. The client stops opening streams.
  std::string out;
  p.server.produce(out);
  ASSERT_TRUE(p.client.receive(bytes(out)).ok());
  ASSERT_EQ(p.client_events.goaways.size(), 1u);
  EXPECT_EQ(p.client_events.goaways[0], (std::pair<int32_t, uint32_t>{0x7fffffff, kNoError}));
  EXPECT_TRUE(p.client.goaway_received());
  EXPECT_EQ(p.client.available_streams(), 0u);
  EXPECT_EQ(p.client.submit_request(views(get_request()), true).error().kind, ErrorKind::kRefused);
  // Step two, once the PING comes back: the final GOAWAY with the last stream processed.
  p.pump();
  ASSERT_EQ(p.client_events.goaways.size(), 2u);
  EXPECT_EQ(p.client_events.goaways[1], (std::pair<int32_t, uint32_t>{*id, kNoError}));
  EXPECT_EQ(p.server.counters().goaways_sent, 2u);
  EXPECT_EQ(p.server_events.connection_errors, 0);
  // The stream in flight finishes; then the server is done.
  EXPECT_FALSE(p.server.finished());
  ASSERT_TRUE(p.server.submit_response(*id, views({{":status", "200"}}), true).ok());
  p.pump();
  EXPECT_TRUE(p.client_events.streams[*id].ended);
  EXPECT_TRUE(p.server.finished());
}

TEST(Http2Session, ResetsBothWays) {
  Pair p;
  auto a = p.client.submit_request(views(get_request()), false);
  auto b = p.client.submit_request(views(get_request()), false);
  ASSERT_TRUE(a.ok() && b.ok());
  p.pump();
  p.client.reset(*a, kCancel);
  p.server.reset(*b, kRefusedStream);
  p.pump();
  EXPECT_TRUE(p.server_events.streams[*a].reset);
  EXPECT_EQ(p.server_events.streams[*a].reset_code, kCancel);
  EXPECT_FALSE(p.server_events.streams[*a].reset_by_us);
  EXPECT_TRUE(p.server_events.streams[*a].closed);
  EXPECT_TRUE(p.client_events.streams[*b].reset);
  EXPECT_EQ(p.client_events.streams[*b].reset_code, kRefusedStream);
  EXPECT_EQ(p.client.counters().resets_sent, 1u);
  EXPECT_EQ(p.client.counters().resets_received, 1u);
  EXPECT_EQ(p.server.counters().resets_sent, 1u);
  EXPECT_EQ(p.server.counters().resets_received, 1u);
  // A reset stream takes nothing more.
  EXPECT_FALSE(p.client.send_data(*a, bytes("x"), true).ok());
}

TEST(Http2Session, PeerGoawayWithErrorEndsTheConnection) {
  Pair p;
  p.pump();
  p.server.goaway(kEnhanceYourCalm);
  p.pump();
  ASSERT_EQ(p.client_events.goaways.size(), 1u);
  EXPECT_EQ(p.client_events.goaways[0].second, kEnhanceYourCalm);
  EXPECT_EQ(p.server_events.connection_errors, 0);  // the owner asked for it
  EXPECT_TRUE(p.server.finished());
}

TEST(Http2Session, IdleSessionMemory) {
  Allocator allocator;
  {
    Recorder events;
    Session server(Role::kServer, events, {}, &allocator);
    std::string out;
    server.produce(out);
    ASSERT_TRUE(server.receive(bytes(client_preface())).ok());
    server.produce(out);
    RecordProperty("idle_server_session_bytes", std::to_string(allocator.live_bytes()));
    std::printf("idle server session: %zu bytes in %zu blocks (nghttp2)\n", allocator.live_bytes(),
                allocator.live_blocks());
    EXPECT_GT(allocator.live_bytes(), 0u);
  }
  EXPECT_EQ(allocator.live_bytes(), 0u);
  EXPECT_EQ(allocator.live_blocks(), 0u);
}

// A client that fails (here: garbage from the server) while a request is still queued: the
// request is never sent, its stream is closed once (REFUSED_STREAM), and nothing touches
// the freed stream when nghttp2 reports the close of the stream it had opened for it.
TEST(Http2Session, ClientErrorWithAnUnsentRequestClosesItOnce) {
  Recorder events;
  Session client(Role::kClient, events);
  events.session = &client;
  auto id = client.submit_request(views(get_request()), true);
  ASSERT_TRUE(id.ok());
  (void)client.receive(bytes("this is not HTTP/2 at all, not even a SETTINGS frame"));
  std::string out;
  client.produce(out);
  EXPECT_EQ(events.connection_errors, 1);
  EXPECT_TRUE(events.streams[*id].closed);
  EXPECT_EQ(events.streams[*id].close_code, kRefusedStream);
  EXPECT_EQ(std::count(events.log.begin(), events.log.end(), "close " + std::to_string(*id)), 1);
  EXPECT_EQ(client.open_streams(), 0u);
  EXPECT_TRUE(client.finished());
}

}  // namespace
}  // namespace ringside::http2::test
