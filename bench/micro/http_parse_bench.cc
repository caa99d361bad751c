// Micro-benchmarks of the HTTP/1.1 parser (src/http): whole typical requests and
// responses through one reused parser, as a keep-alive connection would see them, and the
// same request with its head split across two reads (the buffered path). Registered as a
// one-pass test too (bench/micro/meson.build).
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "ringside/http.h"

namespace ringside::http {
namespace {

const std::string kCurlGet =
    "GET /index.html HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n\r\n";

const std::string kBrowserGet =
    "GET /app/main.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"118\", \"Not=A?Brand\";v=\"99\"\r\nsec-ch-ua-mobile: ?0\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/118.0.0.0 Safari/537.36\r\nsec-ch-ua-platform: \"Linux\"\r\nAccept: */*\r\n"
    "Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: script\r\n"
    "Referer: https://www.example.com/app/\r\nAccept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\nCookie: session=0123456789abcdef; theme=dark\r\n\r\n";

const std::string kPostChunked =
    "POST /api/orders HTTP/1.1\r\nHost: orders.sample-namespace\r\nContent-Type: "
    "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    "1c\r\n{\"item\":\"book\",\"quantity\":2}\r\n"
    "13\r\n,\"note\":\"gift wrap\"\r\n0\r\n\r\n";

const std::string kSmallResponse =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    "Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\n"
    "hello, world\n";

const std::string kChunkedResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    "40\r\n" +
    std::string(64, 'x') + "\r\n40\r\n" + std::string(64, 'y') + "\r\n0\r\n\r\n";

// Parses one whole message from pieces; returns the payload bytes seen, -1 when the
// message was refused or incomplete.
template <typename Parser>
int64_t parse_message(Parser& parser, std::string_view a, std::string_view b = {}) {
  int64_t body = 0;
  for (std::string_view piece : {a, b}) {
    for (;;) {
      const Step step = parser.parse(piece);
      piece.remove_prefix(step.consumed);
      if (step.event == Event::kNeedMore) break;
      if (step.event == Event::kBody) body += static_cast<int64_t>(step.body.size());
      if (step.event == Event::kMessageComplete) return body;
      if (step.event == Event::kError) return -1;
    }
  }
  return -1;
}

template <typename Parser>
void run(benchmark::State& state, const std::string& msg, size_t split) {
  Parser parser;
  const std::string_view all = msg;
  if (parse_message(parser, all) < 0) {
    state.SkipWithError("message does not parse");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(split == 0
                                 ? parse_message(parser, all)
                                 : parse_message(parser, all.substr(0, split), all.substr(split)));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_RequestCurlGet(benchmark::State& s) { run<RequestParser>(s, kCurlGet, 0); }
void BM_RequestBrowserGet(benchmark::State& s) { run<RequestParser>(s, kBrowserGet, 0); }
void BM_RequestBrowserGetSplitHead(benchmark::State& s) {
  run<RequestParser>(s, kBrowserGet, kBrowserGet.size() / 2);
}
void BM_RequestPostChunked(benchmark::State& s) { run<RequestParser>(s, kPostChunked, 0); }
void BM_ResponseSmall(benchmark::State& s) { run<ResponseParser>(s, kSmallResponse, 0); }
void BM_ResponseChunked(benchmark::State& s) { run<ResponseParser>(s, kChunkedResponse, 0); }

BENCHMARK(BM_RequestCurlGet);
BENCHMARK(BM_RequestBrowserGet);
BENCHMARK(BM_RequestBrowserGetSplitHead);
BENCHMARK(BM_RequestPostChunked);
BENCHMARK(BM_ResponseSmall);
BENCHMARK(BM_ResponseChunked);

}  // namespace
}  // namespace ringside::http
