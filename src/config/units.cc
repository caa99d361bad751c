// Durations ("250ms", "5s", "7d") and sizes ("16k", "1m") as flags and the config file
// spell them.
#include <charconv>
#include <limits>

#include "ringside/config.h"

namespace ringside {

namespace {

// The longest duration accepted: 100 years. Anything longer is a typo, and every
// duration must still fit a std::chrono::nanoseconds (292 years) wherever it ends up.
constexpr int64_t kMaxDurationMs = int64_t{36500} * 24 * 3600 * 1000;

Error config_error(std::string_view what) {
  return make_error(ErrorKind::kConfig, Side::kInternal, what);
}

// Splits leading decimal digits from a suffix; false if there are no digits or the
// number does not fit.
bool split_number(std::string_view text, uint64_t* number, std::string_view* suffix,
                  bool* overflow) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, *number);
  *overflow = ec == std::errc::result_out_of_range;
  if (ptr == begin) return false;
  if (*overflow) {
    while (ptr != end && *ptr >= '0' && *ptr <= '9') ++ptr;
  }
  *suffix = std::string_view(ptr, static_cast<size_t>(end - ptr));
  return true;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_lower(std::string_view text, std::string_view lower_word) {
  if (text.size() != lower_word.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (lower(text[i]) != lower_word[i]) return false;
  }
  return true;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text, std::string* detail) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (!text.empty() && text.front() == '-') {
    if (detail) *detail = quoted + " is negative; durations are 0 or more";
    return config_error("negative duration");
  }
  uint64_t number = 0;
  std::string_view unit;
  bool overflow = false;
  if (!split_number(text, &number, &unit, &overflow)) {
    if (detail) *detail = quoted + " is not a duration (a whole number with ms, s, m, h or d)";
    return config_error("not a duration");
  }
  int64_t unit_ms = 0;
  if (unit.empty() || unit == "s") {
    unit_ms = 1000;
  } else if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "m") {
    unit_ms = 60 * 1000;
  } else if (unit == "h") {
    unit_ms = 3600 * 1000;
  } else if (unit == "d") {
    unit_ms = 24 * 3600 * 1000;
  } else {
    if (detail) {
      *detail = quoted + ": unknown unit '" + std::string(unit) + "' (use ms, s, m, h or d)";
    }
    return config_error("unknown duration unit");
  }
  if (overflow || number > static_cast<uint64_t>(kMaxDurationMs / unit_ms)) {
    if (detail) *detail = quoted + " is too long (at most 36500d)";
    return config_error("duration too long");
  }
  return Duration(static_cast<int64_t>(number) * unit_ms);
}

std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0s";
  struct Unit {
    int64_t ms;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {24 * 3600 * 1000, "d"}, {3600 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}};
  for (const Unit& unit : kUnits) {
    if (ms % unit.ms == 0) return std::to_string(ms / unit.ms) + unit.suffix;
  }
  return std::to_string(ms) + "ms";
}

Result<uint64_t> parse_size(std::string_view text, std::string* detail) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (!text.empty() && text.front() == '-') {
    if (detail) *detail = quoted + " is negative";
    return config_error("negative size");
  }
  uint64_t number = 0;
  std::string_view unit;
  bool overflow = false;
  if (!split_number(text, &number, &unit, &overflow)) {
    if (detail) *detail = quoted + " is not a size (a whole number of bytes, or with k, m or g)";
    return config_error("not a size");
  }
  unsigned shift = 0;
  if (unit.empty() || equals_lower(unit, "b")) {
    shift = 0;
  } else if (equals_lower(unit, "k") || equals_lower(unit, "kb") || equals_lower(unit, "kib")) {
    shift = 10;
  } else if (equals_lower(unit, "m") || equals_lower(unit, "mb") || equals_lower(unit, "mib")) {
    shift = 20;
  } else if (equals_lower(unit, "g") || equals_lower(unit, "gb") || equals_lower(unit, "gib")) {
    shift = 30;
  } else {
    if (detail) *detail = quoted + ": unknown unit '" + std::string(unit) + "' (use k, m or g)";
    return config_error("unknown size unit");
  }
  if (overflow || number > (std::numeric_limits<uint64_t>::max() >> shift)) {
    if (detail) *detail = quoted + " is too large";
    return config_error("size too large");
  }
  return number << shift;
}

}  // namespace ringside
