#include "http_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace ringside::bench {
namespace {

using Status = ResponseParser::Status;

// Feeds text in pieces of `step` bytes; returns the status after the last piece and the
// total bytes consumed.
Status feed_in_pieces(ResponseParser& parser, const std::string& text, size_t step,
                      size_t* consumed_total) {
  size_t pos = 0;
  Status status = Status::kNeedMore;
  while (pos < text.size()) {
    size_t len = std::min(step, text.size() - pos);
    size_t consumed = 0;
    status = parser.feed(text.data() + pos, len, &consumed);
    pos += consumed;
    if (status != Status::kNeedMore) break;
    EXPECT_EQ(consumed, len);
  }
  *consumed_total = pos;
  return status;
}

TEST(ResponseParser, ContentLength) {
  std::string response =
      "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world\n";
  ResponseParser parser;
  parser.reset();
  size_t consumed = 0;
  EXPECT_EQ(parser.feed(response, &consumed), Status::kComplete);
  EXPECT_EQ(consumed, response.size());
  EXPECT_EQ(parser.status_code(), 200);
  EXPECT_EQ(parser.body_bytes(), 13u);
  EXPECT_TRUE(parser.keep_alive());
}

TEST(ResponseParser, SplitAtEveryByteBoundary) {
  std::string response =
      "HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\nConnection: close\r\n\r\nnope!";
  for (size_t step = 1; step <= response.size(); ++step) {
    ResponseParser parser;
    parser.reset();
    size_t consumed = 0;
    ASSERT_EQ(feed_in_pieces(parser, response, step, &consumed), Status::kComplete) << step;
    EXPECT_EQ(consumed, response.size());
    EXPECT_EQ(parser.status_code(), 404);
    EXPECT_EQ(parser.body_bytes(), 5u);
    EXPECT_FALSE(parser.keep_alive());
  }
}

TEST(ResponseParser, ChunkedSplitAnywhere) {
  std::string response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nHello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (size_t step = 1; step <= response.size(); ++step) {
    ResponseParser parser;
    parser.reset();
    size_t consumed = 0;
    ASSERT_EQ(feed_in_pieces(parser, response, step, &consumed), Status::kComplete) << step;
    EXPECT_EQ(consumed, response.size());
    EXPECT_EQ(parser.body_bytes(), 5u + 26u);
    EXPECT_TRUE(parser.keep_alive());
  }
}

TEST(ResponseParser, PipelinedResponsesStopAtTheBoundary) {
  std::string one = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  std::string two = "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";
  std::string both = one + two;
  ResponseParser parser;
  parser.reset();
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(both, &consumed), Status::kComplete);
  EXPECT_EQ(consumed, one.size());
  parser.reset();
  size_t consumed_two = 0;
  ASSERT_EQ(parser.feed(both.data() + consumed, both.size() - consumed, &consumed_two),
            Status::kComplete);
  EXPECT_EQ(consumed_two, two.size());
  EXPECT_EQ(parser.status_code(), 503);
}

TEST(ResponseParser, InterimResponseIsSkipped) {
  std::string response =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx";
  ResponseParser parser;
  parser.reset();
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(response, &consumed), Status::kComplete);
  EXPECT_EQ(parser.status_code(), 201);
  EXPECT_EQ(consumed, response.size());
}

TEST(ResponseParser, NoBodyForHeadAnd204) {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
  ResponseParser parser;
  parser.reset(/*head_request=*/true);
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(head, &consumed), Status::kComplete);
  EXPECT_EQ(consumed, head.size());

  std::string no_content = "HTTP/1.1 204 No Content\r\n\r\n";
  parser.reset();
  ASSERT_EQ(parser.feed(no_content, &consumed), Status::kComplete);
  EXPECT_EQ(parser.status_code(), 204);
}

TEST(ResponseParser, CloseDelimitedBodyEndsAtEof) {
  std::string response = "HTTP/1.0 200 OK\r\n\r\nsome bytes";
  ResponseParser parser;
  parser.reset();
  size_t consumed = 0;
  EXPECT_EQ(parser.feed(response, &consumed), Status::kNeedMore);
  EXPECT_EQ(parser.finish_at_eof(), Status::kComplete);
  EXPECT_EQ(parser.body_bytes(), 10u);
  EXPECT_FALSE(parser.keep_alive());
}

TEST(ResponseParser, Http10KeepAlive) {
  std::string response = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
  ResponseParser parser;
  parser.reset();
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(response, &consumed), Status::kComplete);
  EXPECT_TRUE(parser.keep_alive());
}

TEST(ResponseParser, EofInsideABodyIsAnError) {
  ResponseParser parser;
  parser.reset();
  size_t consumed = 0;
  EXPECT_EQ(parser.feed(std::string("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), &consumed),
            Status::kNeedMore);
  EXPECT_EQ(parser.finish_at_eof(), Status::kError);

  ResponseParser idle;
  idle.reset();
  EXPECT_EQ(idle.finish_at_eof(), Status::kNeedMore);  // nothing started: no response lost
}

TEST(ResponseParser, RejectsMalformed) {
  const char* bad[] = {
      "HTTX/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 2x0 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
  };
  for (const char* text : bad) {
    ResponseParser parser;
    parser.reset();
    size_t consumed = 0;
    EXPECT_EQ(parser.feed(std::string(text), &consumed), Status::kError) << text;
  }
}

TEST(ResponseParser, HeadTooLarge) {
  ResponseParser parser;
  parser.reset();
  std::string line = "HTTP/1.1 200 OK\r\n" + std::string(ResponseParser::kMaxHeadBytes, 'a');
  size_t consumed = 0;
  EXPECT_EQ(parser.feed(line, &consumed), Status::kError);
}

}  // namespace
}  // namespace ringside::bench

namespace ringside::bench {
namespace {

TEST(ResponseParser, NonChunkedTransferEncodingIsCloseDelimited) {
  // RFC 9112 6.3: a final coding other than chunked means the body ends at the close,
  // whatever Content-Length says.
  std::string response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef";
  ResponseParser parser;
  parser.reset();
  size_t consumed = 0;
  EXPECT_EQ(parser.feed(response, &consumed), ResponseParser::Status::kNeedMore);
  EXPECT_EQ(parser.finish_at_eof(), ResponseParser::Status::kComplete);
  EXPECT_EQ(parser.body_bytes(), 6u);
  EXPECT_FALSE(parser.keep_alive());
}

}  // namespace
}  // namespace ringside::bench
