// Abuse of an HTTP/2 server connection: each class is bounded and counted, and ends in
// GOAWAY where the anchors end it (docs/http2.md).
#include <gtest/gtest.h>

#include <string>

#include "h2_test_util.h"
#include "ringside/http2.h"

namespace ringside::http2::test {
namespace {

uint64_t fake_now = 0;
uint64_t fake_clock() { return fake_now; }

FieldList with_bad_path() {
  return {{":method", "GET"}, {":scheme", "foo"}, {":authority", "a"}, {":path", "x"}};
}

// An HPACK integer (RFC 7541 5.1) with prefix_bits bits of prefix after first's high bits.
std::string hpack_int(uint8_t first, int prefix_bits, size_t value) {
  const size_t max = (size_t{1} << prefix_bits) - 1;
  std::string out;
  if (value < max) {
    out.push_back(static_cast<char>(first | value));
    return out;
  }
  out.push_back(static_cast<char>(first | max));
  value -= max;
  while (value >= 128) {
    out.push_back(static_cast<char>(0x80 | (value & 0x7f)));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

TEST(Http2Abuse, RapidResetEndsInGoaway) {
  Settings settings;
  settings.reset_burst = 10;
  settings.reset_rate = 0;
  RawServer s(settings);
  Hpack hpack;
  std::string in = client_preface();
  for (int32_t id = 1; id <= 2 * 30; id += 2) {
    in += headers_frame(hpack, id, get_request(), false) + rst_stream(id, kCancel);
  }
  s.feed(in);
  const Frame* goaway = s.last_goaway();
  ASSERT_NE(goaway, nullptr);
  EXPECT_EQ(s.session.counters().reset_flood_hits, 1u);
  EXPECT_EQ(s.events.connection_errors, 1);
  EXPECT_LE(s.session.counters().resets_received, 30u);
}

TEST(Http2Abuse, ResetsWithinTheRateAreFine) {
  RawServer s;  // default: 1000 burst
  Hpack hpack;
  std::string in = client_preface();
  for (int32_t id = 1; id <= 2 * 100; id += 2) {
    in += headers_frame(hpack, id, get_request(), false) + rst_stream(id, kCancel);
  }
  ASSERT_TRUE(s.feed(in));
  EXPECT_EQ(s.last_goaway(), nullptr);
  EXPECT_EQ(s.session.counters().resets_received, 100u);
  EXPECT_EQ(s.session.open_streams(), 0u);
}

TEST(Http2Abuse, ContinuationFloodIsAConnectionError) {
  RawServer s;
  Hpack hpack;
  std::string in = client_preface();
  in += frame(kHeaders, 0, 1, hpack.encode(get_request()));
  for (int i = 0; i < 20; ++i) {
    in += frame(kContinuation, 0, 1, hpack.encode({{"x-filler", std::to_string(i)}}));
  }
  const auto r = s.session.receive(bytes(in));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kResource);
  EXPECT_EQ(s.session.counters().continuation_flood_hits, 1u);
  EXPECT_EQ(s.events.connection_errors, 1);
  EXPECT_TRUE(s.session.finished());
  EXPECT_TRUE(s.events.streams.empty());
}

TEST(Http2Abuse, HpackBombIsAnswered431AndTheConnectionGoesOn) {
  RawServer s;
  // One 4000-byte entry in the dynamic table, then referenced 50 times (one byte each):
  // ~200 KB decoded from ~4 KB on the wire.
  std::string block = "\x82\x87\x84";               // :method GET, :scheme https, :path /
  block += "\x01" + hpack_int(0, 7, 6) + "a.test";  // :authority, not indexed
  block += std::string("\x40") + hpack_int(0, 7, 5) + "x-big" + hpack_int(0, 7, 4000) +
           std::string(4000, 'b');
  for (int i = 0; i < 50; ++i) block += "\xbe";  // dynamic index 62
  ASSERT_TRUE(s.feed(client_preface() + frame(kHeaders, kEndHeaders | kEndStream, 1, block)));
  EXPECT_TRUE(s.events.streams.empty());
  EXPECT_EQ(s.session.counters().header_list_too_large, 1u);
  EXPECT_EQ(s.rst_code(1), -1);  // a response, not a reset
  bool answered = false;
  for (const Frame& f : s.frames) answered |= f.type == kHeaders && f.stream_id == 1;
  EXPECT_TRUE(answered);
  EXPECT_EQ(s.last_goaway(), nullptr);
  // The decoder stayed in step with the peer: the next request decodes.
  const std::string again = "\x82\x87\x84\x01" + hpack_int(0, 7, 6) + "a.test\xbe";
  ASSERT_TRUE(s.feed(frame(kHeaders, kEndHeaders | kEndStream, 3, again)));
  ASSERT_EQ(s.events.streams.count(3), 1u);
  EXPECT_EQ(s.events.streams[3].heads[0].back(),
            (std::pair<std::string, std::string>{"x-big", std::string(4000, 'b')}));
}

TEST(Http2Abuse, TooManyHeadersAnswered431WithTheBodyRefused) {
  RawServer s;
  Hpack hpack;
  FieldList fields = get_request();
  for (int i = 0; i < 150; ++i) fields.emplace_back("x-h" + std::to_string(i), "v");
  ASSERT_TRUE(s.feed(client_preface() + headers_frame(hpack, 1, fields, false) +
                     frame(kData, 0, 1, std::string(1000, 'd'))));
  EXPECT_TRUE(s.events.streams.empty());
  EXPECT_EQ(s.session.counters().too_many_headers, 1u);
  EXPECT_EQ(s.rst_code(1), kNoError);  // after the 431: the rest of the body is not wanted
  EXPECT_EQ(s.session.counters().glitches, 0u);
}

TEST(Http2Abuse, ClientResetsAResponseOverItsLimits) {
  Settings client;
  client.max_headers = 5;
  Pair p({}, client);
  auto id = p.client.submit_request(views(get_request()), true);
  ASSERT_TRUE(id.ok());
  p.pump();
  FieldList head = {{":status", "200"}};
  for (int i = 0; i < 10; ++i) head.emplace_back("x-" + std::to_string(i), "v");
  ASSERT_TRUE(p.server.submit_response(*id, views(head), true).ok());
  p.pump();
  auto& got = p.client_events.streams[*id];
  EXPECT_TRUE(got.heads.empty());
  EXPECT_TRUE(got.reset);
  EXPECT_TRUE(got.reset_by_us);
  EXPECT_TRUE(got.closed);
  EXPECT_EQ(p.client.counters().too_many_headers, 1u);
}

TEST(Http2Abuse, PingFloodIsBounded) {
  RawServer s;
  std::string in = client_preface();
  for (int i = 0; i < 1100; ++i) in += frame(kPing, 0, 0, "12345678");
  // The peer does not read our acknowledgements: they pile up until the bound.
  const auto r = s.session.receive(bytes(in));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(s.session.counters().ack_flood_hits, 1u);
  EXPECT_EQ(s.events.connection_errors, 1);
  EXPECT_TRUE(s.session.finished());
}

TEST(Http2Abuse, PingsAnsweredTurnByTurnAreFine) {
  RawServer s;
  ASSERT_TRUE(s.feed(client_preface()));
  for (int turn = 0; turn < 20; ++turn) {
    std::string in;
    for (int i = 0; i < 100; ++i) in += frame(kPing, 0, 0, "12345678");
    ASSERT_TRUE(s.feed(in));
  }
  EXPECT_EQ(s.count(kPing), 2000);
}

TEST(Http2Abuse, SettingsFloodIsBounded) {
  {
    RawServer s;
    std::vector<std::pair<uint16_t, uint32_t>> entries(40, {0x3, 100});
    s.feed(client_preface() + settings_frame(entries));
    const Frame* goaway = s.last_goaway();
    ASSERT_NE(goaway, nullptr);
    EXPECT_EQ(goaway->goaway_code(), kEnhanceYourCalm);
    EXPECT_EQ(s.session.counters().settings_flood_hits, 1u);
  }
  {
    RawServer s;
    std::string in = client_preface();
    for (int i = 0; i < 1100; ++i) in += settings_frame({{0x3, 100}});
    EXPECT_FALSE(s.session.receive(bytes(in)).ok());
    EXPECT_EQ(s.session.counters().ack_flood_hits, 1u);
  }
}

TEST(Http2Abuse, EmptyDataFramesAreGlitches) {
  Settings settings;
  settings.glitch_burst = 20;
  settings.glitch_rate = 0;
  RawServer s(settings);
  Hpack hpack;
  std::string in = client_preface() + headers_frame(hpack, 1, get_request(), false);
  for (int i = 0; i < 50; ++i) in += frame(kData, 0, 1);
  const auto r = s.session.receive(bytes(in));
  ASSERT_FALSE(r.ok());
  s.drain();
  EXPECT_EQ(s.session.counters().empty_data_frames, 21u);
  EXPECT_EQ(s.session.counters().glitch_limit_hits, 1u);
  ASSERT_NE(s.last_goaway(), nullptr);
  EXPECT_EQ(s.last_goaway()->goaway_code(), kEnhanceYourCalm);
  EXPECT_EQ(s.events.error_code, kEnhanceYourCalm);
  // Input after the error is refused.
  EXPECT_FALSE(s.session.receive(bytes(frame(kData, 0, 1))).ok());
}

TEST(Http2Abuse, GlitchBucketRefillsOverTime) {
  Settings settings;
  settings.glitch_burst = 5;
  settings.glitch_rate = 2;  // per second
  settings.now_ms = fake_clock;
  fake_now = 1000;
  RawServer s(settings);
  Hpack hpack;
  ASSERT_TRUE(s.feed(client_preface()));
  int32_t id = 1;
  auto malformed = [&] {
    const bool ok = s.feed(headers_frame(hpack, id, with_bad_path(), true));
    id += 2;
    return ok;
  };
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(malformed());
  fake_now += 1000;  // two more tokens
  ASSERT_TRUE(malformed());
  ASSERT_TRUE(malformed());
  EXPECT_EQ(s.last_goaway(), nullptr);
  EXPECT_FALSE(malformed());  // the eighth within 1 s: over the bound
  ASSERT_NE(s.last_goaway(), nullptr);
  EXPECT_EQ(s.session.counters().glitches, 8u);
  EXPECT_EQ(s.session.counters().glitch_limit_hits, 1u);
}

TEST(Http2Abuse, StreamsBeyondTheLimitAreRefused) {
  Settings settings;
  settings.max_concurrent_streams = 3;
  {
    // Before the client acknowledged our SETTINGS: REFUSED_STREAM, the connection goes on.
    RawServer s(settings);
    Hpack hpack;
    std::string in = client_preface();
    for (int32_t id = 1; id <= 9; id += 2) in += headers_frame(hpack, id, get_request(), false);
    ASSERT_TRUE(s.feed(in));
    EXPECT_EQ(s.events.streams.size(), 3u);
    EXPECT_EQ(s.rst_code(7), kRefusedStream);
    EXPECT_EQ(s.rst_code(9), kRefusedStream);
    EXPECT_EQ(s.session.counters().refused_streams, 2u);
    EXPECT_EQ(s.last_goaway(), nullptr);
  }
  {
    // After it: nghttp2 makes it a connection error (PROTOCOL_ERROR), docs/http2.md.
    RawServer s(settings);
    Hpack hpack;
    std::string in = client_preface() + frame(kSettings, kAck, 0);
    for (int32_t id = 1; id <= 9; id += 2) in += headers_frame(hpack, id, get_request(), false);
    s.feed(in);
    EXPECT_EQ(s.events.streams.size(), 3u);
    ASSERT_NE(s.last_goaway(), nullptr);
    EXPECT_EQ(s.last_goaway()->goaway_code(), kProtocolError);
    EXPECT_EQ(s.events.connection_errors, 1);
  }
}

}  // namespace
}  // namespace ringside::http2::test
