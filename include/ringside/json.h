// The small amount of JSON ringside writes (admin endpoints, reports): string escaping;
// and a strict reader for what it reads (an ACME server's answers).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "ringside/result.h"

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

// ---- reading ------------------------------------------------------------------------------
// A strict JSON reader (RFC 8259) for the few documents ringside reads from the network
// (an ACME server's answers): no comments, no trailing commas, no leading zeros, no
// duplicate object keys, no control characters or invalid UTF-8 in strings, nothing after
// the value. Input size and nesting depth are bounded.

namespace ringside {

class JsonValue {
 public:
  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }
  // The value for its type; empty / false / 0 for any other type.
  const std::string& string() const { return text_; }
  bool boolean() const { return type_ == Type::kBool && flag_; }
  double number() const { return type_ == Type::kNumber ? number_ : 0; }
  // Array elements, or object member values (in document order).
  const std::vector<JsonValue>& items() const { return items_; }
  // Object member names, parallel to items().
  const std::vector<std::string>& keys() const { return keys_; }
  // An object's member, or null when this is not an object or has no such member.
  const JsonValue* find(std::string_view key) const;
  // An object's string member; empty when missing or not a string.
  std::string_view string_at(std::string_view key) const;

 private:
  friend class JsonReader;
  Type type_ = Type::kNull;
  bool flag_ = false;
  double number_ = 0;
  std::string text_;
  std::vector<std::string> keys_;
  std::vector<JsonValue> items_;
};

struct JsonLimits {
  size_t max_bytes = 1u << 20;
  unsigned max_depth = 32;
};

// Parses one JSON document. On failure detail says why and where (byte offset).
Result<JsonValue> parse_json(std::string_view text, std::string* detail, JsonLimits limits = {});

}  // namespace ringside
