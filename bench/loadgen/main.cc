// ringside-bench: the load generator and test upstream. See docs/bench-tool.md.
//   ringside-bench URL -c CONNS -d DURATION [options]   load a target
//   ringside-bench serve ADDR [options]                  run the hello/echo upstream
#include <signal.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "common.h"
#include "server.h"

namespace po = boost::program_options;
using ringside::bench::parse_duration_ns;
using ringside::bench::parse_size;

namespace {

constexpr int kExitUsage = 2;

std::atomic<bool> g_stop{false};

void on_stop_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// A usage error: one line naming the problem, exit status 2.
int usage_error(const std::string& message) {
  std::fprintf(stderr, "ringside-bench: %s (see --help)\n", message.c_str());
  return kExitUsage;
}

bool duration_flag(const po::variables_map& vm, const char* name, uint64_t* out,
                   std::string* error) {
  if (!vm.count(name)) return true;
  auto value = parse_duration_ns(vm[name].as<std::string>());
  if (!value) {
    *error = std::string("--") + name + ": bad duration '" + vm[name].as<std::string>() +
             "' (examples: 10s, 500ms, 1m)";
    return false;
  }
  *out = *value;
  return true;
}

int serve_main(int argc, char** argv) {
  ringside::bench::ServeOptions options;
  po::options_description flags("ringside-bench serve ADDR [options]");
  // clang-format off
  flags.add_options()
    ("help,h", "show this help")
    ("body-size", po::value<std::string>()->default_value("13"),
     "response body size in bytes (k/M suffixes allowed)")
    ("threads,t", po::value<unsigned>()->default_value(1), "server threads (SO_REUSEPORT)")
    ("delay", po::value<std::string>(), "answer every request after this long (e.g. 5ms)")
    ("stall-after", po::value<uint64_t>(), "stall once after this many requests")
    ("stall-for", po::value<std::string>(), "length of the one-time stall (e.g. 1s)")
    ("echo", po::bool_switch(&options.echo), "TCP echo server instead of HTTP");
  // clang-format on
  po::options_description hidden;
  hidden.add_options()("address", po::value<std::string>());
  po::options_description all;
  all.add(flags).add(hidden);
  po::positional_options_description positional;
  positional.add("address", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << flags << "\nADDR is HOST:PORT (port 0 picks a free port).\n";
    return 0;
  }
  if (!vm.count("address")) return usage_error("serve needs an address, e.g. 127.0.0.1:8080");
  options.address = vm["address"].as<std::string>();
  auto body_size = parse_size(vm["body-size"].as<std::string>());
  if (!body_size)
    return usage_error("--body-size: bad size '" + vm["body-size"].as<std::string>() + "'");
  options.body_size = *body_size;
  options.threads = vm["threads"].as<unsigned>();
  if (options.threads == 0) return usage_error("--threads must be at least 1");
  std::string error;
  if (!duration_flag(vm, "delay", &options.delay_ns, &error) ||
      !duration_flag(vm, "stall-for", &options.stall_for_ns, &error)) {
    return usage_error(error);
  }
  if (vm.count("stall-after")) options.stall_after = vm["stall-after"].as<uint64_t>();
  if ((options.stall_after > 0) != (options.stall_for_ns > 0)) {
    return usage_error("--stall-after and --stall-for go together");
  }
  if (options.echo && (options.delay_ns > 0 || options.stall_after > 0)) {
    return usage_error("--delay and --stall-* apply to the HTTP server, not --echo");
  }
  install_stop_handlers();
  return ringside::bench::run_server(options, &g_stop);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "serve") return serve_main(argc - 1, argv + 1);
  return usage_error("client mode is not built yet; use: ringside-bench serve ADDR");
}
