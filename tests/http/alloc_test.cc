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

}  // namespace
}  // namespace ringside::http
