// The HTTP/1.1 <-> HTTP/2 head translations (src/http2/fields.cc).
#include <gtest/gtest.h>

#include "h2_test_util.h"
#include "ringside/http2_fields.h"

namespace ringside::http2::test {
namespace {

TEST(Http2Fields, ToHttp2DropsConnectionSpecificFieldsAndLowerCases) {
  const FieldList in = {{":method", "GET"},
                        {":scheme", "https"},
                        {":path", "/x"},
                        {"Host", "a.test"},
                        {"Connection", "keep-alive, X-Hop"},
                        {"Keep-Alive", "5"},
                        {"Proxy-Connection", "x"},
                        {"Transfer-Encoding", "chunked"},
                        {"Upgrade", "h2c"},
                        {"X-Hop", "1"},
                        {"TE", "trailers"},
                        {"Accept", "*/*"}};
  OwnedFields out;
  to_http2_fields(views(in), out);
  EXPECT_EQ(copy(out.fields()), (FieldList{{":method", "GET"},
                                           {":scheme", "https"},
                                           {":path", "/x"},
                                           {":authority", "a.test"},
                                           {"te", "trailers"},
                                           {"accept", "*/*"}}));
}

TEST(Http2Fields, ToHttp2KeepsAuthorityAndDropsOtherTe) {
  const FieldList in = {
      {":method", "GET"}, {":authority", "b.test"}, {"host", "b.test"}, {"te", "gzip"}};
  OwnedFields out;
  to_http2_fields(views(in), out);
  EXPECT_EQ(copy(out.fields()), (FieldList{{":method", "GET"}, {":authority", "b.test"}}));
}

TEST(Http2Fields, ToHttp1JoinsCookiesAndAddsHost) {
  const FieldList in = {{":method", "GET"}, {":authority", "a.test"}, {":path", "/"},
                        {"cookie", "a=1"},  {"accept", "x"},          {"cookie", "b=2"},
                        {"cookie", "c=3"}};
  const std::vector<Field> in_views = views(in);
  std::vector<Field> out;
  std::string joined = "left from the last head";
  to_http1_fields(in_views, out, joined);
  EXPECT_EQ(copy(out), (FieldList{{":method", "GET"},
                                  {":authority", "a.test"},
                                  {":path", "/"},
                                  {"host", "a.test"},
                                  {"cookie", "a=1; b=2; c=3"},
                                  {"accept", "x"}}));
  // Views of the input, but for the joined cookie.
  EXPECT_EQ(out[0].value.data(), in_views[0].value.data());
  EXPECT_EQ(out[3].value.data(), in_views[1].value.data());
  EXPECT_EQ(out[4].value.data(), joined.data());
  EXPECT_EQ(out[5].value.data(), in_views[4].value.data());
}

TEST(Http2Fields, ToHttp1KeepsHostAndOneCookieAsTheyCame) {
  const FieldList in = {{":method", "GET"}, {":authority", "a.test"},
                        {"host", "a.test"}, {"cookie", ""},
                        {"x", "1"},         {"cookie", "b=2"}};
  std::vector<Field> out;
  std::string joined;
  to_http1_fields(views(in), out, joined);
  // An empty first crumb is still a crumb.
  EXPECT_EQ(copy(out), (FieldList{{":method", "GET"},
                                  {":authority", "a.test"},
                                  {"host", "a.test"},
                                  {"cookie", "; b=2"},
                                  {"x", "1"}}));
  const FieldList single = {{":method", "GET"}, {":authority", "a.test"}, {"cookie", "a=1"}};
  const std::vector<Field> single_views = views(single);
  to_http1_fields(single_views, out, joined);
  EXPECT_EQ(
      copy(out),
      (FieldList{
          {":method", "GET"}, {":authority", "a.test"}, {"host", "a.test"}, {"cookie", "a=1"}}));
  EXPECT_EQ(out[3].value.data(), single_views[2].value.data());
  EXPECT_TRUE(joined.empty());
}

// Every byte value at every position of names up to 20 bytes (the word steps and the
// tail), against a byte-by-byte check.
// Session::submit_response trusts this (NameCase::kLower): every name the response
// translation gives is lower case, whatever case the HTTP/1.1 app used.
TEST(Http2Fields, ToHttp2ResponseGivesLowerCaseNamesOnly) {
  const FieldList app = {{"Content-Type", "text/plain"}, {"X-Custom-ID", "7"},
                         {"Connection", "close"},        {"Set-Cookie", "a=1"},
                         {"SERVER", "app/1.0"},          {"X-Upstream-Service-Time", "1"},
                         {"Content-Length", "5"},        {"vary", "Accept"}};
  const std::vector<Field> fields = views(app);
  http::ResponseHead head;
  head.status = 200;
  head.fields = fields;
  head.framing = http::Framing::kContentLength;
  head.content_length = 5;
  http::ResponseContext context;
  context.upstream_service_time_ms = 3;
  OwnedFields out;
  EXPECT_TRUE(to_http2_response(head, context, out));
  EXPECT_EQ(copy(out.fields()), (FieldList{{":status", "200"},
                                           {"content-type", "text/plain"},
                                           {"x-custom-id", "7"},
                                           {"set-cookie", "a=1"},
                                           {"vary", "Accept"},
                                           {"content-length", "5"},
                                           {"server", "ringside"},
                                           {"x-upstream-service-time", "3"}}));
  head.status = 103;  // an interim head: its end-to-end fields only, still lower case
  head.framing = http::Framing::kNone;
  EXPECT_FALSE(to_http2_response(head, context, out));
  for (const Field& f : out.fields()) EXPECT_FALSE(has_uppercase(f.name)) << f.name;
  EXPECT_EQ(out.fields().front().value, "103");
}

TEST(Http2Fields, HasUppercaseFindsEveryUpperCaseLetterAndNothingElse) {
  for (size_t size = 1; size <= 20; ++size) {
    for (size_t at = 0; at < size; ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string name(size, 'x');
        name[at] = static_cast<char>(byte);
        // Neighbours whose additions would carry into this byte without the masking.
        if (at > 0) name[at - 1] = static_cast<char>(0xff);
        if (at + 1 < size) name[at + 1] = static_cast<char>(0xff);
        const bool expected = byte >= 'A' && byte <= 'Z';
        ASSERT_EQ(has_uppercase(name), expected)
            << "size " << size << " at " << at << " byte " << byte;
      }
    }
  }
  EXPECT_FALSE(has_uppercase(""));
  EXPECT_FALSE(has_uppercase("x-upstream-service-time"));
  EXPECT_TRUE(has_uppercase("x-upstream-service-timE"));
}

TEST(Http2Fields, OwnedFieldsSurviveGrowth) {
  OwnedFields f;
  for (int i = 0; i < 1000; ++i) f.add_lowercase("X-" + std::to_string(i), std::to_string(i));
  ASSERT_EQ(f.size(), 1000u);
  EXPECT_EQ(f.fields()[999].name, "x-999");
  EXPECT_EQ(f.fields()[0].value, "0");
  f.clear_and_trim(16);
  EXPECT_TRUE(f.empty());
  EXPECT_TRUE(f.fields().empty());
}

}  // namespace
}  // namespace ringside::http2::test
