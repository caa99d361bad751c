// Hop-by-hop fields (RFC 9110 7.6.1): what a proxy removes before forwarding a message.
#include <array>
#include <bit>
#include <cstdint>

#include "ringside/http.h"

namespace ringside::http {
namespace {

constexpr std::array<std::string_view, 7> kFixedHopByHop = {
    "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
};

// Bit i is set in kBySize[n] when kFixedHopByHop[i] has n characters: a field's name is
// compared with the fixed names of its size only (none, for most names).
constexpr auto kBySize = [] {
  std::array<uint8_t, 18> by_size{};
  for (size_t i = 0; i < kFixedHopByHop.size(); ++i) {
    by_size[kFixedHopByHop[i].size()] |= static_cast<uint8_t>(1u << i);
  }
  return by_size;
}();

// The bit (1 << index in kFixedHopByHop) of a fixed hop-by-hop name, or 0.
uint32_t fixed_hop_by_hop_bit(std::string_view name) {
  if (name.size() >= kBySize.size()) return 0;
  for (uint32_t candidates = kBySize[name.size()]; candidates != 0; candidates &= candidates - 1) {
    const int i = std::countr_zero(candidates);
    if (iequals(name, kFixedHopByHop[static_cast<size_t>(i)])) return 1u << i;
  }
  return 0;
}

// Calls fn(option) for every option of every Connection field.
template <typename Fn>
void for_each_connection_option(std::span<const Field> fields, Fn fn) {
  for (const Field& f : fields) {
    if (!iequals(f.name, "connection")) continue;
    std::string_view list = f.value;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      std::string_view option = list.substr(0, comma);
      while (!option.empty() && (option.front() == ' ' || option.front() == '\t')) {
        option.remove_prefix(1);
      }
      while (!option.empty() && (option.back() == ' ' || option.back() == '\t')) {
        option.remove_suffix(1);
      }
      if (!option.empty()) fn(option);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
}

}  // namespace

std::span<const std::string_view> fixed_hop_by_hop_fields() { return kFixedHopByHop; }

bool is_hop_by_hop(std::string_view name, std::span<const Field> fields) {
  for (std::string_view fixed : kFixedHopByHop) {
    if (iequals(name, fixed)) return true;
  }
  bool listed = false;
  for_each_connection_option(fields, [&](std::string_view option) {
    if (iequals(option, name)) listed = true;
  });
  return listed;
}

void hop_by_hop_names(std::span<const Field> fields, std::vector<std::string_view>& out) {
  out.clear();
  // One pass over the fields (this runs for every head the proxy encodes; most names
  // match no fixed name's size, see kBySize), then the present ones in fixed order, and
  // the Connection options only when there is a Connection field.
  uint32_t present = 0;
  for (const Field& f : fields) present |= fixed_hop_by_hop_bit(f.name);
  const bool has_connection = (present & 1u) != 0;
  for (uint32_t left = present; left != 0; left &= left - 1) {
    out.push_back(kFixedHopByHop[static_cast<size_t>(std::countr_zero(left))]);
  }
  if (has_connection) {
    for_each_connection_option(fields, [&](std::string_view option) { out.push_back(option); });
  }
}

}  // namespace ringside::http
