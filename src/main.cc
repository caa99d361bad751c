// ringside: the sidecar. See README.md and shared/DESIGN.md.
#include <cstdio>
#include <string>
#include <string_view>

#include "proxy/server.h"
#include "ringside/config.h"
#include "ringside/log.h"
#include "ringside/probe.h"

int main(int argc, char** argv) {
  // `ringside probe ...`: a health check of a running sidecar, with flags of its own.
  if (argc >= 2 && std::string_view(argv[1]) == "probe")
    return ringside::run_probe(argc - 2, argv + 2);
  ringside::ParseOutcome parsed = ringside::parse_command_line(argc, argv);
  if (parsed.action == ringside::ParseOutcome::Action::kExit) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    if (!parsed.message.empty() && parsed.message.back() != '\n') {
      std::fputc('\n', parsed.exit_code == 0 ? stdout : stderr);
    }
    return parsed.exit_code;
  }
  if (auto level = ringside::log::parse_level(parsed.config.log_level)) {
    ringside::log::set_level(*level);
  }

  ringside::proxy::Server server(std::move(parsed.config));
  std::string detail;
  if (!server.prepare(&detail).ok()) {
    std::fprintf(stderr, "ringside: %s\n", detail.c_str());
    return 2;
  }
  return server.run();
}
