// The small amount of JSON ringside writes (admin endpoints, reports): string escaping.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace ringside {

// Appends text as the inside of a JSON string: quotes, backslashes and control
// characters escaped; other bytes (UTF-8 included) copied as they are.
inline void append_json_escaped(std::string& out, std::string_view text) {
  for (char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(ch));
      out += buf;
    } else {
      out += ch;
    }
  }
}

inline std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_json_escaped(out, text);
  return out;
}

}  // namespace ringside
