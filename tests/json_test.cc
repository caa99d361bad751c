// The strict JSON reader (include/ringside/json.h): what it accepts, and that it refuses
// malformed, oversized and too deeply nested input with the reason.
#include "ringside/json.h"

#include <gtest/gtest.h>

#include <string>

namespace ringside {
namespace {

TEST(JsonTest, ReadsAnAcmeOrder) {
  std::string detail;
  auto value = parse_json(R"({"status":"pending","expires":"2026-01-01T00:00:00Z",
      "identifiers":[{"type":"dns","value":"app.example"}],
      "authorizations":["https://ca/authz/1"],"finalize":"https://ca/fin/1",
      "n":-12.5e2,"t":true,"f":false,"z":null})",
                          &detail);
  ASSERT_TRUE(value.ok()) << detail;
  EXPECT_EQ(value->string_at("status"), "pending");
  ASSERT_TRUE(value->find("identifiers")->is_array());
  EXPECT_EQ(value->find("identifiers")->items()[0].string_at("value"), "app.example");
  EXPECT_EQ(value->find("authorizations")->items()[0].string(), "https://ca/authz/1");
  EXPECT_EQ(value->find("n")->number(), -1250);
  EXPECT_TRUE(value->find("t")->boolean());
  EXPECT_FALSE(value->find("f")->boolean());
  EXPECT_EQ(value->find("z")->type(), JsonValue::Type::kNull);
  EXPECT_EQ(value->find("missing"), nullptr);
  EXPECT_EQ(value->string_at("n"), "");  // not a string
}

TEST(JsonTest, DecodesEscapesAndUtf8) {
  std::string detail;
  auto value = parse_json(R"(["a\"b\\c\/\n\t", "\u00e9\u20ac\ud83d\ude00", "é"])", &detail);
  ASSERT_TRUE(value.ok()) << detail;
  EXPECT_EQ(value->items()[0].string(), "a\"b\\c/\n\t");
  EXPECT_EQ(value->items()[1].string(), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(value->items()[2].string(), "\xc3\xa9");
}

TEST(JsonTest, RefusesMalformedInput) {
  for (const char* text : {"",
                           " ",
                           "{",
                           "}",
                           "[1,]",
                           "{\"a\":1,}",
                           "{\"a\" 1}",
                           "{a:1}",
                           "[01]",
                           "[1.]",
                           "[.5]",
                           "[-]",
                           "[1e]",
                           "tru",
                           "nul",
                           "[\"a\"",
                           "\"\\x\"",
                           "\"\\u12\"",
                           "\"\\ud800\"",
                           "\"\\udc00\"",
                           "\"a\x01\"",
                           "\"\xc0\xaf\"",
                           "\"\xed\xa0\x80\"",
                           "\"\xff\"",
                           "{\"a\":1}x",
                           "{\"a\":1,\"a\":2}",
                           "[1e999]",
                           "'a'",
                           "[NaN]"}) {
    std::string detail;
    auto value = parse_json(text, &detail);
    EXPECT_FALSE(value.ok()) << "accepted: " << text;
    EXPECT_NE(detail.find("invalid JSON"), std::string::npos) << detail;
  }
}

TEST(JsonTest, BoundsDepthAndSize) {
  std::string detail;
  std::string deep = std::string(40, '[') + std::string(40, ']');
  EXPECT_FALSE(parse_json(deep, &detail).ok());
  EXPECT_NE(detail.find("nested deeper than 32"), std::string::npos) << detail;
  std::string ok_depth = std::string(31, '[') + std::string(31, ']');
  EXPECT_TRUE(parse_json(ok_depth, &detail).ok()) << detail;
  JsonLimits small;
  small.max_bytes = 16;
  EXPECT_FALSE(parse_json("\"0123456789abcdefgh\"", &detail, small).ok());
  EXPECT_NE(detail.find("larger than 16 bytes"), std::string::npos) << detail;
}

}  // namespace
}  // namespace ringside
