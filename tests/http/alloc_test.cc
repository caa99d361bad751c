// The parser allocates nothing per message once warmed up: the field vectors and the
// partial-head buffer are reused. A replaced global operator new counts allocations.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "count_allocations.h"
#include "ringside/http.h"

using ringside::testing::g_allocations;
using ringside::testing::g_live_bytes;

namespace ringside::http {
namespace {

// Feeds msg in two pieces (split at `at`) and runs to kMessageComplete.
template <typename Parser>
bool parse_one(Parser& parser, std::string_view msg, size_t at) {
  for (std::string_view piece : {msg.substr(0, at), msg.substr(at)}) {
    for (;;) {
      const Step step = parser.parse(piece);
      piece.remove_prefix(step.consumed);
      if (step.event == Event::kNeedMore) break;
      if (step.event == Event::kError) return false;
      if (step.event == Event::kMessageComplete) return piece.empty();
    }
  }
  return false;
}

TEST(HttpAllocations, NoneInSteadyState) {
  std::string fields;
  for (int i = 0; i < 30; ++i) fields += "X-Field-" + std::to_string(i) + ": value\r\n";
  const std::string requests[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n",
      "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
      "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n"
      "0\r\nT1: a\r\nT2: b\r\n\r\n",
  };
  const std::string response =
      "HTTP/1.1 200 OK\r\n" + fields + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  RequestParser req;
  ResponseParser resp;
  auto round = [&] {
    bool ok = true;
    for (const std::string& r : requests) {
      ok = ok && parse_one(req, r, r.size());      // whole
      ok = ok && parse_one(req, r, r.size() / 3);  // head split: the buffered path
      ok = ok && parse_one(req, r, r.size() - 3);  // trailers split
    }
    ok = ok && parse_one(resp, response, response.size() / 2);
    return ok;
  };
  ASSERT_TRUE(round());  // warm-up: vectors and the head buffer reach their size
  const size_t before = g_allocations.load();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(round());
  EXPECT_EQ(g_allocations.load() - before, 0u);
}

// A parser between messages can be handed to another connection: release_head_buffer()
// gives back the partial-head buffer a split head made it allocate; in the middle of a
// head the parser is not between messages and keeps the bytes read so far.
TEST(HttpAllocations, ReleaseHeadBufferFreesTheSplitHeadBuffer) {
  std::string fields;
  for (int i = 0; i < 30; ++i) fields += "X-Field-" + std::to_string(i) + ": value\r\n";
  const std::string request = "GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n";
  RequestParser parser;
  EXPECT_TRUE(parser.between_messages());
  ASSERT_TRUE(parse_one(parser, request, request.size()));  // whole: field arrays only
  const size_t unsplit = g_live_bytes.load();
  ASSERT_TRUE(parse_one(parser, request, request.size() / 2));  // split: buffered head
  EXPECT_GE(g_live_bytes.load(), unsplit + parser.limits().max_head_bytes);
  EXPECT_TRUE(parser.between_messages());
  parser.release_head_buffer();
  EXPECT_EQ(g_live_bytes.load(), unsplit);

  // Half a head: not between messages; release_head_buffer() keeps it.
  const std::string_view half = std::string_view(request).substr(0, request.size() / 2);
  ASSERT_EQ(parser.parse(half).event, Event::kNeedMore);
  EXPECT_FALSE(parser.between_messages());
  parser.release_head_buffer();
  std::string_view rest = std::string_view(request).substr(half.size());
  const Step step = parser.parse(rest);
  ASSERT_EQ(step.event, Event::kHead);
  EXPECT_EQ(parser.head().fields.size(), 31u);
  EXPECT_EQ(parser.head().fields.back().name, "X-Field-29");
  EXPECT_FALSE(parser.between_messages());  // the message has not completed yet
  EXPECT_EQ(parser.parse(rest.substr(step.consumed)).event, Event::kMessageComplete);
  EXPECT_TRUE(parser.between_messages());
}

}  // namespace
}  // namespace ringside::http
