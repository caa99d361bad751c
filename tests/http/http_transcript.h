// Test support: drives a RequestParser or ResponseParser over bytes fed in pieces and
// records everything it reported as text. Feeding the same bytes split differently must
// give the same transcript; the unit tests, the differential tool and the fuzz targets
// all compare transcripts. Header-only so the fuzz targets can use it without the library.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/http.h"

namespace ringside::http::testing {

inline const char* framing_name(Framing f) {
  switch (f) {
    case Framing::kNone:
      return "none";
    case Framing::kContentLength:
      return "length";
    case Framing::kChunked:
      return "chunked";
    case Framing::kUntilClose:
      return "close";
  }
  return "?";
}

// Printable form of arbitrary bytes: printable ASCII kept, the rest as \xNN.
inline std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    }
  }
  return out;
}

inline std::string describe_fields(std::span<const Field> fields) {
  std::string out;
  for (const Field& f : fields) {
    out += " [" + escape(f.name) + ": " + escape(f.value) + "]";
  }
  return out;
}

inline std::string describe(const RequestHead& h) {
  std::string out = "HEAD " + escape(h.method) + " " + escape(h.target) +
                    (h.version == Version::kHttp11 ? " 1.1" : " 1.0") +
                    " form=" + std::to_string(static_cast<int>(h.target_form)) +
                    " authority=" + escape(h.authority) + " framing=" + framing_name(h.framing) +
                    " cl=" + std::to_string(h.content_length) +
                    " ka=" + std::to_string(h.keep_alive) +
                    " expect=" + std::to_string(h.expect_continue) +
                    " upgrade=" + std::to_string(h.upgrade) + ":" + escape(h.upgrade_protocols);
  return out + describe_fields(h.fields);
}

inline std::string describe(const ResponseHead& h) {
  std::string out =
      "HEAD " + std::to_string(h.status) + " " + escape(h.reason) +
      (h.version == Version::kHttp11 ? " 1.1" : " 1.0") + " framing=" + framing_name(h.framing) +
      " cl=" + std::to_string(h.content_length) + " ka=" + std::to_string(h.keep_alive) +
      " switch=" + std::to_string(h.switches_protocol);
  return out + describe_fields(h.fields);
}

// What feed() saw, plus the byte offsets (from the start of all input) where each message
// ended, for the differential test.
struct Transcript {
  std::string text;
  std::vector<size_t> message_ends;
  std::vector<std::string> bodies;
  // Set when the parser broke the contract of parse() itself (consumed more than it was
  // given, kNeedMore with input left, an endless loop); the text says the same.
  bool contract_broken = false;
};

// Feeds pieces in order, then finish() if asked. Stops at an error or a tunnel.
template <typename Parser>
Transcript feed(Parser& parser, const std::vector<std::string_view>& pieces, bool finish = true) {
  Transcript t;
  std::string body;
  size_t offset = 0;
  size_t remaining_total = 0;
  for (std::string_view p : pieces) remaining_total += p.size();
  int guard = 0;
  auto record = [&](const Step& step) -> bool {
    if (++guard > 1000000) {
      t.text += "LOOP\n";
      t.contract_broken = true;
      return false;
    }
    switch (step.event) {
      case Event::kNeedMore:
        return true;
      case Event::kHead:
        t.text += describe(parser.head()) + "\n";
        return true;
      case Event::kBody:
        body.append(step.body);
        return true;
      case Event::kMessageComplete:
        t.text += "BODY " + std::to_string(body.size()) + " " + escape(body) + "\n";
        t.text += "COMPLETE" + describe_fields(parser.trailers()) + "\n";
        t.message_ends.push_back(offset);
        t.bodies.push_back(body);
        body.clear();
        return true;
      case Event::kTunnel:
        t.text += "TUNNEL rest=" + std::to_string(remaining_total - offset) + "\n";
        return false;
      case Event::kError:
        t.text += "ERROR " + std::to_string(parser.error().status) + " " +
                  std::string(parser.error().reason) + "\n";
        return false;
    }
    return false;
  };
  for (std::string_view piece : pieces) {
    for (;;) {
      const Step step = parser.parse(piece);
      if (step.consumed > piece.size()) {
        t.text += "OVERCONSUMED\n";
        t.contract_broken = true;
        return t;
      }
      piece.remove_prefix(step.consumed);
      offset += step.consumed;
      if (!record(step)) return t;
      if (step.event == Event::kNeedMore) {
        if (!piece.empty()) {
          t.text += "NEEDMORE WITH INPUT LEFT\n";
          t.contract_broken = true;
          return t;
        }
        break;
      }
    }
  }
  if (finish) {
    const Step step = parser.finish();
    if (step.event == Event::kNeedMore) {
      t.text += "CLOSED\n";
    } else {
      record(step);
    }
  } else {
    t.text += "END\n";
  }
  return t;
}

// The whole input in one piece.
template <typename Parser>
Transcript feed_whole(Parser& parser, std::string_view bytes, bool finish = true) {
  return feed(parser, std::vector<std::string_view>{bytes}, finish);
}

// Split in two at position at.
template <typename Parser>
Transcript feed_split(Parser& parser, std::string_view bytes, size_t at, bool finish = true) {
  return feed(parser, std::vector<std::string_view>{bytes.substr(0, at), bytes.substr(at)}, finish);
}

// One byte per piece.
template <typename Parser>
Transcript feed_bytewise(Parser& parser, std::string_view bytes, bool finish = true) {
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < bytes.size(); ++i) pieces.push_back(bytes.substr(i, 1));
  return feed(parser, pieces, finish);
}

}  // namespace ringside::http::testing
