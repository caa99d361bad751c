// Endpoint files (--upstream SERVICE=file:PATH) and the client alias lines of
// `ringside hosts`: the two places where ringside reads or writes a hosts-like file.
#include <arpa/inet.h>

#include <string>
#include <utility>
#include <vector>

#include "ringside/config.h"

namespace ringside {

bool parse_endpoint_file(std::string_view text, std::vector<SocketAddress>* endpoints,
                         std::string* detail) {
  endpoints->clear();
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    std::string why;
    auto address = SocketAddress::resolve(line, &why);
    if (!address || address->port() == 0) {
      *detail = "line " + std::to_string(line_number) + ": '" + std::string(line) +
                "' is not HOST:PORT" +
                (why.empty() || why.find("HOST:PORT") != std::string::npos ? "" : " (" + why + ")");
      return false;
    }
    endpoints->push_back(*address);
  }
  if (endpoints->empty()) {
    *detail = "no endpoint in the file (HOST:PORT lines expected)";
    return false;
  }
  return true;
}

namespace {

std::string ip_text(const SocketAddress& address) {
  char ip[INET6_ADDRSTRLEN] = {};
  const auto* storage = &address.storage;
  if (address.family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(storage)->sin_addr, ip, sizeof(ip));
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(storage)->sin6_addr, ip, sizeof(ip));
  }
  return ip;
}

}  // namespace

std::string render_hosts(const Config& config) {
  // Grouped by address, in the order of the flags: "127.255.0.1 a.ns b.ns".
  std::vector<std::pair<std::string, std::vector<std::string>>> lines;
  std::string notes;
  auto line_of = [&lines](const std::string& address) {
    auto it = lines.begin();
    while (it != lines.end() && it->first != address) ++it;
    if (it == lines.end()) it = lines.insert(lines.end(), {address, {}});
    return it;
  };
  auto listed = [&lines](const std::string& name) {
    for (const auto& line : lines) {
      for (const std::string& known : line.second) {
        if (known == name) return true;
      }
    }
    return false;
  };
  // The host names of --route targets go to the first HTTP egress listener's address:
  // a request for any of them reaches the route table there.
  std::string route_address;
  for (const ListenerConfig& listener : config.listeners) {
    if (listener.kind != ListenerKind::kEgress) continue;
    const std::string address = ip_text(listener.listen);
    if (address == "0.0.0.0" || address == "::") {
      notes += "# " + listener.name + " (" + listener.service +
               ") listens on every address: no alias line\n";
      continue;
    }
    auto it = line_of(address);
    bool known = false;
    for (const std::string& name : it->second) known = known || name == listener.service;
    if (!known) it->second.push_back(listener.service);
    if (route_address.empty() && listener.protocol != Protocol::kTcp) route_address = address;
  }
  for (const http::Route& route : config.http.routes) {
    const std::string flag = "# --route " + route.host + route.path_prefix + "=" + route.service;
    if (route.host.empty() || route.host.front() == '*') {
      notes += flag + ": a wildcard host has no alias line\n";
    } else if (route_address.empty()) {
      notes += flag + ": no HTTP egress listener on one address: no alias line\n";
    } else if (!listed(route.host)) {
      line_of(route_address)->second.push_back(route.host);
    }
  }
  std::string out = "# ringside client aliases (egress listeners)\n" + notes;
  for (const auto& [address, names] : lines) {
    out += address;
    for (const std::string& name : names) out += " " + name;
    out += "\n";
  }
  return out;
}

}  // namespace ringside
