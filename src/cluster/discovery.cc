#include "ringside/discovery.h"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "certs/sources.h"
#include "ringside/log.h"
#include "ringside/timer_wheel.h"

namespace ringside::cluster {

bool resolve_all(const std::string& host, uint16_t port, std::vector<SocketAddress>* out,
                 std::string* detail) {
  out->clear();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &results);
  if (rc != 0) {
    *detail = "cannot resolve '" + host +
              "': " + (rc == EAI_SYSTEM ? std::string(std::strerror(errno)) : gai_strerror(rc));
    return false;
  }
  std::vector<std::pair<std::string, SocketAddress>> found;
  for (const addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    SocketAddress address;
    std::memcpy(&address.storage, ai->ai_addr, ai->ai_addrlen);
    address.length = ai->ai_addrlen;
    found.emplace_back(address.to_string(), address);
  }
  ::freeaddrinfo(results);
  // Sorted: a resolver that rotates its answers does not make a new set every refresh.
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < found.size(); ++i) {
    if (i == 0 || found[i].first != found[i - 1].first) out->push_back(found[i].second);
  }
  if (out->empty()) {
    *detail = "'" + host + "' has no IPv4 or IPv6 address";
    return false;
  }
  return true;
}

namespace {

bool load_file(const std::string& path, std::vector<SocketAddress>* out, std::string* detail) {
  // A read error is an error, never a shorter text parsed as a smaller endpoint set.
  std::string text;
  if (!certs::read_whole_file(path, &text, detail)) {
    *detail = "cannot read " + *detail;
    return false;
  }
  return parse_endpoint_file(text, out, detail);
}

}  // namespace

Discovery::Discovery(std::vector<Service> services, DiscoveryTuning tuning) : tuning_(tuning) {
  std::vector<std::string> files;
  for (Service& service : services) {
    Tracked tracked;
    tracked.cluster = service.cluster;
    for (const UpstreamEndpoint& endpoint : service.config.endpoints) {
      tracked.static_endpoints.push_back({endpoint.address, EndpointSourceKind::kStatic});
      SourceStatus status;
      status.text = endpoint.text;
      status.endpoints = 1;
      status.refreshes = 1;
      tracked.statics.push_back(std::move(status));
    }
    for (const DynamicEndpoints& config : service.config.dynamic) {
      Source source;
      source.config = config;
      source.status.text = config.text;
      source.status.kind = config.kind;
      if (config.kind == EndpointSourceKind::kFile) files.push_back(config.path);
      tracked.sources.push_back(std::move(source));
    }
    tracked_.push_back(std::move(tracked));
  }
  watcher_.watch(std::move(files));
}

Discovery::~Discovery() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool Discovery::dynamic() const {
  for (const Tracked& tracked : tracked_) {
    if (!tracked.sources.empty()) return true;
  }
  return false;
}

void Discovery::refresh(Source& source) {
  std::vector<SocketAddress> found;
  std::string why;
  const bool ok = source.config.kind == EndpointSourceKind::kDns
                      ? resolve_all(source.config.host, source.config.port, &found, &why)
                      : load_file(source.config.path, &found, &why);
  if (!ok) {
    ++source.status.failures;
    if (why != source.status.last_error) {
      RS_WARN("%s: %s; keeping its last %zu endpoint(s)", source.config.text.c_str(), why.c_str(),
              source.last_good.size());
    }
    source.status.last_error = why;
    return;
  }
  if (!source.status.last_error.empty()) {
    RS_INFO("%s: resolves again (%zu endpoint(s))", source.config.text.c_str(), found.size());
  }
  ++source.status.refreshes;
  source.status.last_error.clear();
  source.status.endpoints = found.size();
  source.last_good = std::move(found);
}

void Discovery::publish(Tracked& tracked) {
  std::vector<DiscoveredEndpoint> endpoints = tracked.static_endpoints;
  std::vector<SourceStatus> statuses = tracked.statics;
  for (const Source& source : tracked.sources) {
    for (const SocketAddress& address : source.last_good) {
      endpoints.push_back({address, source.config.kind});
    }
    statuses.push_back(source.status);
  }
  tracked.cluster->set_sources(std::move(statuses));
  tracked.cluster->update(endpoints);
}

void Discovery::initialize() {
  for (Tracked& tracked : tracked_) {
    for (Source& source : tracked.sources) refresh(source);
    publish(tracked);
    if (tracked.cluster->addresses().empty()) {
      RS_WARN("cluster %s: no endpoint yet; connections to it are refused until one appears",
              tracked.cluster->name().c_str());
    }
  }
}

void Discovery::refresh_now() {
  for (Tracked& tracked : tracked_) {
    for (Source& source : tracked.sources) refresh(source);
    publish(tracked);
  }
}

size_t Discovery::collect_now() {
  size_t freed = 0;
  for (Tracked& tracked : tracked_) freed += tracked.cluster->collect();
  return freed;
}

size_t Discovery::pending() const {
  size_t pending = 0;
  for (const Tracked& tracked : tracked_) pending += tracked.cluster->pending();
  return pending;
}

Result<void> Discovery::start(std::string* detail) {
  if (!dynamic() || thread_.joinable()) return {};
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    *detail = std::string("eventfd: ") + std::strerror(errno);
    return make_error(ErrorKind::kResource, Side::kInternal, "eventfd", errno);
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void Discovery::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  wake();
  thread_.join();
}

void Discovery::wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void Discovery::run() {
  log::set_thread_name("disc");
  const int64_t dns_ms = tuning_.dns_refresh.count();
  int64_t now_ms = static_cast<int64_t>(monotonic_ms());
  int64_t next_dns_ms = now_ms + dns_ms;
  while (!stop_.load(std::memory_order_acquire)) {
    // At least once a second: a long --dns-refresh must not overflow poll()'s int.
    int64_t wake_at = std::min({next_dns_ms, watcher_.next_deadline(), now_ms + 1000});
    if (pending() != 0) wake_at = std::min(wake_at, now_ms + tuning_.reclaim_interval.count());
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {watcher_.fd(), POLLIN, 0}};
    const int timeout = static_cast<int>(std::max<int64_t>(wake_at - now_ms, 0));
    const int n = ::poll(fds, watcher_.fd() >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno != EINTR) {
      RS_ERROR("endpoint discovery: poll: %s", std::strerror(errno));
      ::usleep(100 * 1000);
    }
    if (stop_.load(std::memory_order_acquire)) break;
    now_ms = static_cast<int64_t>(monotonic_ms());
    const bool files_due = watcher_.due(now_ms, n > 0 && (fds[1].revents & POLLIN));
    const bool dns_due = now_ms >= next_dns_ms;
    if (files_due) watcher_.handled();
    if (dns_due) next_dns_ms = now_ms + dns_ms;
    for (Tracked& tracked : tracked_) {
      bool touched = false;
      for (Source& source : tracked.sources) {
        const bool due = source.config.kind == EndpointSourceKind::kDns ? dns_due : files_due;
        if (!due) continue;
        refresh(source);
        touched = true;
      }
      if (touched) publish(tracked);
    }
    if (pending() != 0) collect_now();
    now_ms = static_cast<int64_t>(monotonic_ms());
  }
}

}  // namespace ringside::cluster
