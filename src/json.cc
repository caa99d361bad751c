#include "ringside/json.h"

#include <cmath>
#include <cstdlib>

namespace ringside {

const JsonValue* JsonValue::find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return &items_[i];
  }
  return nullptr;
}

std::string_view JsonValue::string_at(std::string_view key) const {
  const JsonValue* value = find(key);
  return value != nullptr && value->is_string() ? std::string_view(value->text_)
                                                : std::string_view();
}

class JsonReader {
 public:
  JsonReader(std::string_view text, JsonLimits limits) : text_(text), limits_(limits) {}

  bool document(JsonValue* out) {
    if (text_.size() > limits_.max_bytes) {
      return fail("larger than " + std::to_string(limits_.max_bytes) + " bytes");
    }
    skip_space();
    if (!value(out, 0)) return false;
    skip_space();
    if (at_ != text_.size()) return fail("unexpected data after the value");
    return true;
  }

  std::string error() const { return error_ + " at byte " + std::to_string(at_); }

 private:
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  bool end() const { return at_ >= text_.size(); }
  char peek() const { return end() ? '\0' : text_[at_]; }
  void skip_space() {
    while (!end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++at_;
  }
  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return fail("invalid literal");
    at_ += word.size();
    return true;
  }

  bool value(JsonValue* out, unsigned depth) {
    if (depth >= limits_.max_depth) {
      return fail("nested deeper than " + std::to_string(limits_.max_depth));
    }
    switch (peek()) {
      case '{':
        return object(out, depth);
      case '[':
        return array(out, depth);
      case '"':
        out->type_ = JsonValue::Type::kString;
        return string(&out->text_);
      case 't':
        out->type_ = JsonValue::Type::kBool;
        out->flag_ = true;
        return literal("true");
      case 'f':
        out->type_ = JsonValue::Type::kBool;
        return literal("false");
      case 'n':
        return literal("null");
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return number(out);
        return fail(end() ? "unexpected end" : "unexpected character");
    }
  }

  bool object(JsonValue* out, unsigned depth) {
    out->type_ = JsonValue::Type::kObject;
    ++at_;
    skip_space();
    if (peek() == '}') {
      ++at_;
      return true;
    }
    for (;;) {
      std::string key;
      if (peek() != '"') return fail("expected a member name");
      if (!string(&key)) return false;
      if (out->find(key) != nullptr) return fail("duplicate member \"" + key + "\"");
      skip_space();
      if (peek() != ':') return fail("expected ':'");
      ++at_;
      skip_space();
      JsonValue member;
      if (!value(&member, depth + 1)) return false;
      out->keys_.push_back(std::move(key));
      out->items_.push_back(std::move(member));
      skip_space();
      if (peek() == '}') {
        ++at_;
        return true;
      }
      if (peek() != ',') return fail("expected ',' or '}'");
      ++at_;
      skip_space();
    }
  }

  bool array(JsonValue* out, unsigned depth) {
    out->type_ = JsonValue::Type::kArray;
    ++at_;
    skip_space();
    if (peek() == ']') {
      ++at_;
      return true;
    }
    for (;;) {
      JsonValue item;
      if (!value(&item, depth + 1)) return false;
      out->items_.push_back(std::move(item));
      skip_space();
      if (peek() == ']') {
        ++at_;
        return true;
      }
      if (peek() != ',') return fail("expected ',' or ']'");
      ++at_;
      skip_space();
    }
  }

  bool digits() {
    if (end() || peek() < '0' || peek() > '9') return fail("expected a digit");
    while (!end() && peek() >= '0' && peek() <= '9') ++at_;
    return true;
  }

  bool number(JsonValue* out) {
    size_t start = at_;
    if (peek() == '-') ++at_;
    if (peek() == '0') {
      ++at_;
      if (peek() >= '0' && peek() <= '9') return fail("leading zero");
    } else if (!digits()) {
      return false;
    }
    if (peek() == '.') {
      ++at_;
      if (!digits()) return false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++at_;
      if (peek() == '+' || peek() == '-') ++at_;
      if (!digits()) return false;
    }
    std::string text(text_.substr(start, at_ - start));
    out->type_ = JsonValue::Type::kNumber;
    out->number_ = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(out->number_)) return fail("number out of range");
    return true;
  }

  bool hex4(uint32_t* code) {
    if (at_ + 4 > text_.size()) return fail("truncated \\u escape");
    *code = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[at_++];
      int v = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (v < 0) return fail("bad \\u escape");
      *code = *code * 16 + static_cast<uint32_t>(v);
    }
    return true;
  }

  static void append_utf8(std::string* out, uint32_t code) {
    if (code < 0x80) {
      *out += static_cast<char>(code);
    } else if (code < 0x800) {
      *out += static_cast<char>(0xc0 | (code >> 6));
      *out += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      *out += static_cast<char>(0xe0 | (code >> 12));
      *out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (code >> 18));
      *out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }

  // One UTF-8 sequence starting at at_ (RFC 3629: shortest form, no surrogates).
  bool utf8(std::string* out) {
    auto byte = [&](size_t i) { return static_cast<uint8_t>(text_[i]); };
    uint8_t lead = byte(at_);
    size_t length = lead >= 0xf0 && lead <= 0xf4 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 ? 2 : 0;
    if (lead >= 0xf5 || length == 0 || at_ + length > text_.size()) return fail("invalid UTF-8");
    uint32_t code = lead & (0x7f >> length);
    for (size_t i = 1; i < length; ++i) {
      if ((byte(at_ + i) & 0xc0) != 0x80) return fail("invalid UTF-8");
      code = (code << 6) | (byte(at_ + i) & 0x3f);
    }
    const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < least[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return fail("invalid UTF-8");
    }
    out->append(text_.substr(at_, length));
    at_ += length;
    return true;
  }

  bool string(std::string* out) {
    ++at_;  // the opening quote
    for (;;) {
      if (end()) return fail("unterminated string");
      char c = text_[at_];
      if (c == '"') {
        ++at_;
        return true;
      }
      if (static_cast<uint8_t>(c) < 0x20) return fail("control character in a string");
      if (static_cast<uint8_t>(c) >= 0x80) {
        if (!utf8(out)) return false;
        continue;
      }
      ++at_;
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (end()) return fail("unterminated string");
      char e = text_[at_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          *out += e;
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'n':
          *out += '\n';
          break;
        case 'r':
          *out += '\r';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          uint32_t code = 0;
          if (!hex4(&code)) return false;
          if (code >= 0xdc00 && code <= 0xdfff) return fail("lone low surrogate");
          if (code >= 0xd800 && code <= 0xdbff) {
            uint32_t low = 0;
            if (text_.substr(at_, 2) != "\\u") return fail("lone high surrogate");
            at_ += 2;
            if (!hex4(&low)) return false;
            if (low < 0xdc00 || low > 0xdfff) return fail("lone high surrogate");
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          }
          append_utf8(out, code);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
  }

  std::string_view text_;
  JsonLimits limits_;
  size_t at_ = 0;
  std::string error_;
};

Result<JsonValue> parse_json(std::string_view text, std::string* detail, JsonLimits limits) {
  JsonReader reader(text, limits);
  JsonValue value;
  if (!reader.document(&value)) {
    *detail = "invalid JSON: " + reader.error();
    return make_error(ErrorKind::kProtocol, Side::kUpstream, "json");
  }
  return value;
}

}  // namespace ringside
