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
  OwnedFields out;
  to_http1_fields(views(in), out);
  EXPECT_EQ(copy(out.fields()), (FieldList{{":method", "GET"},
                                           {":authority", "a.test"},
                                           {":path", "/"},
                                           {"host", "a.test"},
                                           {"cookie", "a=1; b=2; c=3"},
                                           {"accept", "x"}}));
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
