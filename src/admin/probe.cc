// `ringside probe`: GET /ready on the local admin server, as an exit status.
#include "ringside/probe.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include "net/blocking_client.h"

namespace ringside {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultAdmin = "127.0.0.1:9901";
constexpr const char* kDefaultTimeout = "2s";
// The answer's status line and a short body ("ready", "draining", the app's health) fit;
// anything longer is not an admin server's /ready.
constexpr size_t kMaxAnswer = 4096;
constexpr std::chrono::milliseconds kRetryInterval{200};

ProbeResult not_ready(int status, std::string line) {
  return ProbeResult{false, status, std::move(line)};
}

// The body of the answer, trimmed to its first line, for the one line we print.
std::string first_body_line(std::string_view answer) {
  const size_t end = answer.find("\r\n\r\n");
  if (end == std::string_view::npos) return {};
  std::string_view body = answer.substr(end + 4);
  body = body.substr(0, body.find_first_of("\r\n"));
  return std::string(body.substr(0, 200));
}

std::string usage() {
  return std::string(
             "Usage: ringside probe [--admin ADDR] [--timeout DURATION] [--wait DURATION]\n\n") +
         "Asks the admin server of the ringside on this host (or in this task or pod) for\n"
         "GET /ready and exits 0 when it answers 200, 1 otherwise (not running, starting,\n"
         "draining, the local app unhealthy, no answer in time), printing one line.\n\n" +
         "  --admin ADDR         the sidecar's --admin address (default " + kDefaultAdmin + ")\n" +
         "  --timeout DURATION   for each attempt (default " + kDefaultTimeout + ")\n" +
         "  --wait DURATION      ask again every 200 ms until ready or this has passed\n"
         "                       (default 0: ask once)\n";
}

}  // namespace

ProbeResult probe_ready(const SocketAddress& admin, Duration timeout) {
  const std::string where = admin.to_string();
  const std::string in_time = " within " + format_duration(timeout);
  // "timeout" or "connect: Connection refused" from the connection, said for a reader.
  auto why = [&in_time](const std::string& error) {
    if (error == "timeout") return in_time.substr(1);
    const size_t colon = error.find(": ");
    return colon == std::string::npos ? error : error.substr(colon + 2);
  };

  net::BlockingConnection connection(admin, Clock::now() + timeout);
  if (!connection.ok()) {
    return not_ready(0, "not ready: cannot connect to " + where + ": " + why(connection.error()));
  }
  const std::string request = "GET /ready HTTP/1.1\r\nHost: " + where +
                              "\r\nUser-Agent: ringside-probe\r\nConnection: close\r\n\r\n";
  if (!connection.send_all(request)) {
    return not_ready(0, "not ready: sending to " + where + ": " + why(connection.error()));
  }

  // The admin server closes every connection after its answer.
  std::string answer;
  char buffer[1024];
  while (answer.size() < kMaxAnswer) {
    const ssize_t n = connection.receive(buffer, sizeof(buffer));
    if (n > 0) {
      answer.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && connection.error() == "timeout") {
      return not_ready(0, "not ready: no answer from " + where + in_time);
    }
    break;
  }

  // "HTTP/1.1 200 OK"
  int status = 0;
  if (answer.rfind("HTTP/1.", 0) == 0 && answer.size() >= 12 && answer[8] == ' ') {
    for (size_t i = 9; i < 12 && answer[i] >= '0' && answer[i] <= '9'; ++i) {
      status = status * 10 + (answer[i] - '0');
    }
    if (status < 100) status = 0;
  }
  if (status == 0) {
    return not_ready(0, "not ready: " + where + " did not answer like an admin server");
  }
  std::string body = first_body_line(answer);
  const std::string said = std::to_string(status) + (body.empty() ? "" : " " + body);
  if (status == 200) return ProbeResult{true, status, "ready: " + where + " answered " + said};
  return not_ready(status, "not ready: " + where + " answered " + said);
}

int run_probe(int argc, const char* const* argv) {
  std::string admin_text = kDefaultAdmin;
  std::string timeout_text = kDefaultTimeout;
  std::string wait_text = "0";
  auto bad = [](const std::string& problem) {
    std::fprintf(stderr, "ringside probe: %s (see ringside probe --help)\n", problem.c_str());
    return 2;
  };
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage().c_str(), stdout);
      return 0;
    }
    std::string* target = nullptr;
    std::string_view name = arg.substr(0, arg.find('='));
    if (name == "--admin") {
      target = &admin_text;
    } else if (name == "--timeout") {
      target = &timeout_text;
    } else if (name == "--wait") {
      target = &wait_text;
    } else {
      return bad(arg.rfind("-", 0) == 0 ? "unknown flag '" + std::string(arg) + "'"
                                        : "unexpected argument '" + std::string(arg) + "'");
    }
    if (name.size() < arg.size()) {
      *target = std::string(arg.substr(name.size() + 1));
    } else if (i + 1 < argc) {
      *target = argv[++i];
    } else {
      return bad(std::string(name) + " needs a value");
    }
  }

  if (admin_text == "off") return bad("--admin off: the sidecar has no admin server to ask");
  auto admin = SocketAddress::parse_numeric(admin_text);
  if (!admin.ok()) {
    return bad("--admin '" + admin_text + "': not a numeric address with a port (127.0.0.1:9901)");
  }
  std::string detail;
  auto timeout = parse_duration(timeout_text, &detail);
  if (!timeout.ok()) return bad("--timeout '" + timeout_text + "': " + detail);
  if (timeout.value().count() <= 0) return bad("--timeout must be more than 0");

  auto wait = parse_duration(wait_text, &detail);
  if (!wait.ok()) return bad("--wait '" + wait_text + "': " + detail);

  // --wait: ask again every 200 ms until ready or the time is up (systemd's ExecStartPost,
  // where the unit counts as started once this exits 0).
  const Clock::time_point give_up = Clock::now() + wait.value();
  ProbeResult result = probe_ready(admin.value(), timeout.value());
  while (!result.ready && Clock::now() + kRetryInterval < give_up) {
    std::this_thread::sleep_for(kRetryInterval);
    result = probe_ready(admin.value(), timeout.value());
  }
  std::printf("%s\n", result.line.c_str());
  return result.ready ? 0 : 1;
}

}  // namespace ringside
