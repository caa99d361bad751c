// RFC 9113 section 8 on the server side: every malformed request is a stream error
// (RST_STREAM(PROTOCOL_ERROR)) that the owner never sees, and the connection goes on.
#include <gtest/gtest.h>

#include <string>

#include "h2_test_util.h"
#include "ringside/http2.h"

namespace ringside::http2::test {
namespace {

struct Malformed {
  const char* name;
  FieldList fields;
  std::string body;  // sent as one DATA frame with END_STREAM when not empty
};

FieldList with(FieldList base, const FieldList& extra) {
  base.insert(base.end(), extra.begin(), extra.end());
  return base;
}

FieldList post() {
  return {{":method", "POST"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/"}};
}

TEST(Http2Malformed, EachClassIsAStreamError) {
  const std::vector<Malformed> cases = {
      {"uppercase name", with(get_request(), {{"X-Upper", "1"}}), ""},
      {"name with a space", with(get_request(), {{"a b", "1"}}), ""},
      {"name with a colon inside", with(get_request(), {{"a:b", "1"}}), ""},
      {"empty name", with(get_request(), {{"", "1"}}), ""},
      {"value with NUL", with(get_request(), {{"x", std::string("a\0b", 3)}}), ""},
      {"value with CR LF", with(get_request(), {{"x", "a\r\nb: c"}}), ""},
      {"value with leading space", with(get_request(), {{"x", " a"}}), ""},
      {"connection", with(get_request(), {{"connection", "keep-alive"}}), ""},
      {"keep-alive", with(get_request(), {{"keep-alive", "5"}}), ""},
      {"proxy-connection", with(get_request(), {{"proxy-connection", "x"}}), ""},
      {"transfer-encoding", with(get_request(), {{"transfer-encoding", "chunked"}}), ""},
      {"upgrade", with(get_request(), {{"upgrade", "websocket"}}), ""},
      {"te other than trailers", with(get_request(), {{"te", "gzip"}}), ""},
      {"missing :method", {{":scheme", "https"}, {":authority", "a"}, {":path", "/"}}, ""},
      {"missing :path", {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}}, ""},
      {"missing :scheme", {{":method", "GET"}, {":authority", "a"}, {":path", "/"}}, ""},
      {"duplicate :path", with(get_request(), {{":path", "/again"}}), ""},
      {"duplicate :method",
       {{":method", "GET"}, {":method", "GET"}, {":scheme", "https"}, {":path", "/"}},
       ""},
      {"pseudo-header after a regular field",
       {{":method", "GET"}, {":scheme", "https"}, {"x", "1"}, {":path", "/"}},
       ""},
      {"unknown pseudo-header", with(get_request(), {{":foo", "bar"}}), ""},
      {":protocol without extended CONNECT", with(get_request(), {{":protocol", "websocket"}}), ""},
      {"response pseudo-header in a request", with(get_request(), {{":status", "200"}}), ""},
      {"empty :path", {{":method", "GET"}, {":scheme", "https"}, {":path", ""}}, ""},
      {":path without a slash (https)",
       {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "x"}},
       ""},
      {":path without a slash (other scheme)",
       {{":method", "GET"}, {":scheme", "foo"}, {":authority", "a"}, {":path", "x"}},
       ""},
      {":path * with GET",
       {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "*"}},
       ""},
      {":path with a space",
       {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/a b"}},
       ""},
      {"CONNECT with :path", {{":method", "CONNECT"}, {":authority", "a:443"}, {":path", "/"}}, ""},
      {"CONNECT with :scheme",
       {{":method", "CONNECT"}, {":authority", "a:443"}, {":scheme", "https"}},
       ""},
      {"CONNECT without :authority", {{":method", "CONNECT"}}, ""},
      {"host differs from :authority", with(get_request(), {{"host", "other.test"}}), ""},
      {"two content-length", with(post(), {{"content-length", "1"}, {"content-length", "2"}}), "x"},
      {"content-length not a number", with(post(), {{"content-length", "abc"}}), "x"},
      {"more DATA than content-length", with(post(), {{"content-length", "3"}}), "hello"},
      {"less DATA than content-length", with(post(), {{"content-length", "30"}}), "hello"},
  };
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.name);
    RawServer s;
    Hpack hpack;
    std::string in = client_preface();
    in += headers_frame(hpack, 1, c.fields, c.body.empty());
    if (!c.body.empty()) in += frame(kData, kEndStream, 1, c.body);
    ASSERT_TRUE(s.feed(in));
    EXPECT_EQ(s.rst_code(1), kProtocolError);
    // The owner saw no request, or (content-length) a request that was then reset.
    if (c.body.empty()) {
      EXPECT_EQ(s.events.streams.count(1), 0u);
    } else if (s.events.streams.count(1) != 0) {
      EXPECT_TRUE(s.events.streams[1].reset);
      EXPECT_TRUE(s.events.streams[1].reset_by_us);
      EXPECT_FALSE(s.events.streams[1].ended);
    }
    EXPECT_EQ(s.session.counters().malformed_messages, 1u);
    EXPECT_GE(s.session.counters().glitches, 1u);
    // A stream error, not a connection error: the next request is served.
    ASSERT_TRUE(s.feed(headers_frame(hpack, 3, get_request(), true)));
    EXPECT_EQ(s.events.streams[3].heads.size(), 1u);
    EXPECT_EQ(s.last_goaway(), nullptr);
    EXPECT_EQ(s.events.connection_errors, 0);
  }
}

TEST(Http2Malformed, ValidFormsAreAccepted) {
  const std::vector<std::pair<const char*, FieldList>> cases = {
      {"OPTIONS *",
       {{":method", "OPTIONS"}, {":scheme", "https"}, {":authority", "a"}, {":path", "*"}}},
      {"CONNECT", {{":method", "CONNECT"}, {":authority", "a.test:443"}}},
      {"host equal to :authority", with(get_request(), {{"host", "EXAMPLE.com"}})},
      {"host without :authority",
       {{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"host", "a"}}},
      {"te: trailers", with(get_request(), {{"te", "trailers"}})},
      {"query and odd characters", with(get_request("/a?b=c&d=%20#x"), {{"x", "a\tb"}})},
  };
  for (const auto& [name, fields] : cases) {
    SCOPED_TRACE(name);
    RawServer s;
    Hpack hpack;
    ASSERT_TRUE(s.feed(client_preface() + headers_frame(hpack, 1, fields, true)));
    EXPECT_EQ(s.rst_code(1), -1);
    ASSERT_EQ(s.events.streams[1].heads.size(), 1u);
    EXPECT_EQ(s.events.streams[1].heads[0], fields);
    EXPECT_EQ(s.session.counters().malformed_messages, 0u);
  }
}

TEST(Http2Malformed, BadTrailersAreAStreamError) {
  for (const FieldList& trailers : {FieldList{{":path", "/"}}, FieldList{{"X-Upper", "1"}},
                                    FieldList{{"connection", "close"}}}) {
    RawServer s;
    Hpack hpack;
    ASSERT_TRUE(s.feed(client_preface() + headers_frame(hpack, 1, post(), false) +
                       frame(kData, 0, 1, "body") + headers_frame(hpack, 1, trailers, true)));
    EXPECT_EQ(s.rst_code(1), kProtocolError) << trailers[0].first;
    EXPECT_TRUE(s.events.streams[1].trailers.empty());
    EXPECT_FALSE(s.events.streams[1].ended);
    EXPECT_TRUE(s.events.streams[1].reset_by_us);
  }
}

TEST(Http2Malformed, TrailersWithoutEndStreamAreAStreamError) {
  RawServer s;
  Hpack hpack;
  ASSERT_TRUE(s.feed(client_preface() + headers_frame(hpack, 1, post(), false) +
                     headers_frame(hpack, 1, {{"x", "1"}}, false)));
  EXPECT_EQ(s.rst_code(1), kProtocolError);
}

TEST(Http2Malformed, ConnectionErrorsEndTheConnection) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"DATA on stream 0", frame(kData, 0, 0, "x")},
      {"HEADERS on an even stream", frame(kHeaders, kEndHeaders, 2, "\x82")},
      {"SETTINGS with a bad length", frame(kSettings, 0, 0, "abc")},
      {"window update of zero on the connection", frame(kWindowUpdate, 0, 0, be32(0))},
      {"PUSH_PROMISE from a client", frame(kPushPromise, kEndHeaders, 1, be32(2) + "\x82")},
      {"CONTINUATION without HEADERS", frame(kContinuation, kEndHeaders, 1, "\x82")},
      {"a frame larger than SETTINGS_MAX_FRAME_SIZE", frame(kData, 0, 1, std::string(20000, 'x'))},
      {"bad HPACK", frame(kHeaders, kEndHeaders | kEndStream, 1, "\xff\xff\xff\xff\xff\xff")},
  };
  for (const auto& [name, bad] : cases) {
    SCOPED_TRACE(name);
    RawServer s;
    const bool ok = s.feed(client_preface() + bad);
    const Frame* goaway = s.last_goaway();
    ASSERT_NE(goaway, nullptr);
    EXPECT_NE(goaway->goaway_code(), kNoError);
    EXPECT_TRUE(ok);  // answered by GOAWAY from produce(), reported there
    EXPECT_EQ(s.events.connection_errors, 1);
    EXPECT_EQ(s.events.error_code, goaway->goaway_code());
    EXPECT_TRUE(s.session.finished());
  }
}

}  // namespace
}  // namespace ringside::http2::test
