// http_dump request|response FILE...: parses each file one-shot (then EOF) and prints what
// ringside accepted, for tests/http/differential.py to compare with another parser:
//   FILE <path>
//   MSG <start> <end offset> <body as hex or ->     (one per completed message)
//   INTERIM <status>                               (a 1xx head)
//   END ok | END error <status> <reason> | END tunnel
// <start> is "METHOD target" for requests and the status code for responses.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "ringside/http.h"

namespace {

using namespace ringside::http;

std::string hex(std::string_view s) {
  if (s.empty()) return "-";
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    out += digits[static_cast<uint8_t>(c) >> 4];
    out += digits[static_cast<uint8_t>(c) & 15];
  }
  return out;
}

std::string start_of(const RequestParser& p) {
  return std::string(p.head().method) + " " + std::string(p.head().target);
}
std::string start_of(const ResponseParser& p) { return std::to_string(p.head().status); }
bool interim(const RequestParser&) { return false; }
bool interim(const ResponseParser& p) { return p.head().interim(); }

template <typename Parser>
void dump(Parser& parser, std::string_view input) {
  const size_t total = input.size();
  std::string start;
  std::string body;
  auto handle = [&](const Step& step) -> bool {
    switch (step.event) {
      case Event::kNeedMore:
        return true;
      case Event::kHead:
        if (interim(parser)) {
          std::printf("INTERIM %s\n", start_of(parser).c_str());
        } else {
          start = start_of(parser);
        }
        return true;
      case Event::kBody:
        body.append(step.body);
        return true;
      case Event::kMessageComplete:
        std::printf("MSG %s %zu %s\n", start.c_str(), total - input.size(), hex(body).c_str());
        body.clear();
        return true;
      case Event::kTunnel:
        std::printf("END tunnel\n");
        return false;
      case Event::kError:
        std::printf("END error %u %s\n", parser.error().status,
                    std::string(parser.error().reason).c_str());
        return false;
    }
    return false;
  };
  for (;;) {
    const Step step = parser.parse(input);
    input.remove_prefix(step.consumed);
    if (!handle(step)) return;
    if (step.event == Event::kNeedMore) break;
  }
  for (;;) {
    const Step step = parser.finish();
    if (step.event == Event::kNeedMore) {
      std::printf("END ok\n");
      return;
    }
    if (!handle(step)) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: http_dump request|response FILE...\n");
    return 2;
  }
  const std::string mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::printf("FILE %s\n", argv[i]);
    if (mode == "request") {
      RequestParser p;
      dump(p, bytes);
    } else {
      ResponseParser p;
      dump(p, bytes);
    }
  }
  return 0;
}
