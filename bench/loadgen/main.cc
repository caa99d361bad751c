// ringside-bench: the load generator and test upstream. See docs/bench-tool.md.
//   ringside-bench URL -c CONNS -d DURATION [options]   load a target
//   ringside-bench serve ADDR [options]                  run the hello/echo/gRPC upstream
//   ringside-bench relay LISTEN UPSTREAM                 a minimal plaintext relay (a floor)
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "client.h"
#include "common.h"
#include "grpc.h"
#include "relay.h"
#include "report.h"
#include "server.h"
#include "tls_link.h"
#include "url.h"

namespace po = boost::program_options;
using ringside::bench::parse_duration_ns;
using ringside::bench::parse_size;

namespace {

constexpr int kExitUsage = 2;
// Most streams per connection (-m): servers allow 100 to a few hundred.
constexpr unsigned kMaxStreams = 10000;

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
    ("echo", po::bool_switch(&options.echo), "TCP echo server instead of HTTP")
    ("grpc", po::bool_switch(&options.grpc),
     "gRPC echo server over h2c (HTTP/2 prior knowledge): every unary call, any path, is "
     "answered with its own request message and grpc-status 0");
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
  if (options.echo && options.grpc) return usage_error("--echo and --grpc do not go together");
  if ((options.echo || options.grpc) && (options.delay_ns > 0 || options.stall_after > 0)) {
    return usage_error(std::string("--delay and --stall-* apply to the HTTP server, not ") +
                       (options.echo ? "--echo" : "--grpc"));
  }
  if (options.grpc && !vm["body-size"].defaulted()) {
    return usage_error("--body-size applies to the HTTP server (--grpc echoes the request)");
  }
  install_stop_handlers();
  return ringside::bench::run_server(options, &g_stop);
}

int relay_main(int argc, char** argv) {
  ringside::bench::RelayOptions options;
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << "ringside-bench relay LISTEN UPSTREAM\n\n"
                 "A minimal plaintext TCP relay (one epoll loop, no TLS, no HTTP): accepts on\n"
                 "LISTEN (HOST:PORT), connects each connection to UPSTREAM and relays both\n"
                 "ways. bench/compare uses it as the floor under the proxies.\n";
    return 0;
  }
  if (argc != 3)
    return usage_error("relay needs LISTEN and UPSTREAM, e.g. 127.0.0.1:9000 127.0.0.1:8080");
  options.listen = argv[1];
  options.upstream = argv[2];
  install_stop_handlers();
  return ringside::bench::run_relay(options, &g_stop);
}

int client_main(int argc, char** argv) {
  using namespace ringside::bench;
  ClientOptions options;
  std::string mode;
  std::string write_size;
  std::string duration;
  std::string timeout;
  std::string json_path;
  std::string plot_path;
  std::string message_size;
  TlsClientOptions tls;
  po::options_description flags(
      "ringside-bench URL -c CONNS -d DURATION [options]\n"
      "ringside-bench serve ADDR [options]   (see: ringside-bench serve --help)\n"
      "ringside-bench relay LISTEN UPSTREAM  (a minimal plaintext relay: bench/compare's floor)\n\n"
      "URL is http://HOST[:PORT]/PATH or https://...; tcp://HOST:PORT or tls://HOST:PORT for "
      "--mode tcp.\nOptions");
  // clang-format off
  flags.add_options()
    ("help,h", "show this help")
    ("connections,c", po::value<unsigned>(&options.connections)->default_value(10),
     "connections to keep open")
    ("duration,d", po::value<std::string>(&duration)->default_value("10s"),
     "test duration (10s, 500ms, 1m)")
    ("threads,t", po::value<unsigned>(&options.threads)->default_value(1), "threads")
    ("rate,R", po::value<double>(&options.rate)->default_value(0),
     "open loop: total requests/s, latency from the intended send time (0: closed loop)")
    ("mode", po::value<std::string>(&mode)->default_value("http"),
     "http (keep-alive requests), handshake (new connection per request), "
     "tcp (stream throughput)")
    ("write-size", po::value<std::string>(&write_size)->default_value("16k"),
     "--mode tcp: bytes per write")
    ("header,H", po::value<std::vector<std::string>>(&options.headers)->composing(),
     "add a request header 'Name: value' (repeatable)")
    ("method", po::value<std::string>(&options.method)->default_value("GET"), "request method")
    ("timeout", po::value<std::string>(&timeout)->default_value("5s"),
     "connect, handshake and response timeout")
    ("cacert", po::value<std::string>(&tls.cacert_file), "PEM bundle of CAs to trust")
    ("insecure,k", po::bool_switch(&tls.insecure), "do not verify the server certificate")
    ("sni", po::value<std::string>(&tls.sni),
     "server name to send and verify (default: the URL host when it is a name)")
    ("cert", po::value<std::string>(&tls.cert_file), "client certificate chain (mTLS)")
    ("key", po::value<std::string>(&tls.key_file), "client private key (mTLS)")
    ("tls13-only", po::bool_switch(&tls.tls13_only), "offer TLS 1.3 only")
    ("resume", po::bool_switch(&tls.resume),
     "--mode handshake: resume sessions with tickets")
    ("h2", po::bool_switch(&options.http2),
     "HTTP/2: h2 chosen with ALPN for https://, h2c (prior knowledge) for http://")
    ("streams,m", po::value<unsigned>(&options.streams)->default_value(1),
     "--h2: concurrent streams (requests in flight) per connection")
    ("grpc", po::value<std::string>(&options.grpc_path),
     "unary gRPC calls to /package.Service/Method (POST, application/grpc; implies --h2)")
    ("message-size", po::value<std::string>(&message_size)->default_value("0"),
     "--grpc: payload bytes of each request message (k/M suffixes, up to 16M)")
    ("json", po::value<std::string>(&json_path), "write all results as JSON to FILE")
    ("plot", po::value<std::string>(&plot_path),
     "write a latency percentile chart (SVG) to FILE");
  // clang-format on
  po::options_description hidden;
  hidden.add_options()("url", po::value<std::string>());
  po::options_description all;
  all.add(flags).add(hidden);
  po::positional_options_description positional;
  positional.add("url", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return 0;
  }
  if (!vm.count("url")) return usage_error("missing URL, e.g. http://127.0.0.1:8080/");
  std::string error;
  auto url = parse_url(vm["url"].as<std::string>(), &error);
  if (!url) return usage_error(error);
  options.url = *url;
  if (mode == "http") {
    options.mode = Mode::kHttp;
  } else if (mode == "handshake") {
    options.mode = Mode::kHandshake;
  } else if (mode == "tcp") {
    options.mode = Mode::kTcp;
  } else {
    return usage_error("--mode must be http, handshake or tcp, not '" + mode + "'");
  }
  bool stream_scheme = url->scheme == "tcp" || url->scheme == "tls";
  if (stream_scheme != (options.mode == Mode::kTcp)) {
    return usage_error(stream_scheme ? "tcp:// and tls:// URLs need --mode tcp"
                                     : "--mode tcp needs a tcp:// or tls:// URL");
  }
  if (options.connections == 0) return usage_error("-c/--connections must be at least 1");
  if (options.threads == 0) return usage_error("-t/--threads must be at least 1");
  if (options.threads > options.connections) options.threads = options.connections;
  auto duration_ns = parse_duration_ns(duration);
  if (!duration_ns || *duration_ns == 0) {
    return usage_error("-d/--duration: bad duration '" + duration + "' (examples: 10s, 500ms, 1m)");
  }
  options.duration_ns = *duration_ns;
  auto timeout_ns = parse_duration_ns(timeout);
  if (!timeout_ns || *timeout_ns == 0) {
    return usage_error("--timeout: bad duration '" + timeout + "'");
  }
  options.timeout_ns = *timeout_ns;
  if (!(options.rate >= 0) || !std::isfinite(options.rate)) {
    return usage_error("-R/--rate must be a positive number of requests per second");
  }
  auto size = parse_size(write_size);
  if (!size || *size == 0 || *size > (64u << 20)) {
    return usage_error("--write-size: bad size '" + write_size + "' (1 byte to 64M)");
  }
  options.write_size = *size;
  for (const std::string& header : options.headers) {
    size_t colon = header.find(':');
    if (colon == std::string::npos || colon == 0 ||
        header.find_first_of("\r\n") != std::string::npos) {
      return usage_error("-H: bad header '" + header + "' (expected 'Name: value')");
    }
  }
  if (options.method.empty() || options.method.find_first_of(" \r\n") != std::string::npos) {
    return usage_error("--method: bad method '" + options.method + "'");
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return usage_error("--cert and --key go together");
  }
  if (tls.resume && options.mode != Mode::kHandshake) {
    return usage_error("--resume applies to --mode handshake");
  }
  bool tls_flags = !tls.cacert_file.empty() || tls.insecure || !tls.sni.empty() ||
                   !tls.cert_file.empty() || tls.tls13_only || tls.resume;
  if (tls_flags && !url->tls) return usage_error("TLS options need an https:// or tls:// URL");
  if (url->tls && tls.cacert_file.empty() && !tls.insecure) {
    return usage_error("https:// needs --cacert FILE (or --insecure)");
  }
  options.resume = tls.resume;
  if (vm.count("grpc")) {
    if (!valid_grpc_path(options.grpc_path)) {
      return usage_error("--grpc: bad method '" + options.grpc_path +
                         "' (expected /package.Service/Method)");
    }
    if (!vm["method"].defaulted()) return usage_error("--method does not apply to --grpc (POST)");
    options.http2 = true;
  }
  if (!vm["message-size"].defaulted()) {
    auto bytes = parse_size(message_size);
    if (!bytes || *bytes > kMaxGrpcMessage) {
      return usage_error("--message-size: bad size '" + message_size + "' (0 to 16M)");
    }
    if (options.grpc_path.empty()) return usage_error("--message-size applies to --grpc");
    options.message_size = *bytes;
  }
  if (options.streams == 0 || options.streams > kMaxStreams) {
    return usage_error("-m/--streams must be 1 to " + std::to_string(kMaxStreams));
  }
  if (!vm["streams"].defaulted() && !options.http2) {
    return usage_error("-m/--streams applies to --h2 (HTTP/1.1 has one request in flight)");
  }
  if (options.http2 && options.mode != Mode::kHttp) {
    return usage_error("--h2 and --grpc apply to --mode http");
  }
  if (options.http2 && url->tls) tls.alpn = "h2";

  auto endpoint = resolve_endpoint(url->host, url->port, &error);
  if (!endpoint) {
    std::fprintf(stderr, "ringside-bench: %s\n", error.c_str());
    return 1;
  }
  options.endpoint = *endpoint;
  std::unique_ptr<TlsClient> tls_client;
  if (url->tls) {
    if (tls.sni.empty() && !url->is_ipv6_literal() &&
        url->host.find_first_not_of("0123456789.") != std::string::npos) {
      tls.sni = url->host;
    }
    tls_client = TlsClient::create(tls, options.threads, &error);
    if (!tls_client) {
      std::fprintf(stderr, "ringside-bench: %s\n", error.c_str());
      return 1;
    }
    options.tls = tls_client.get();
  }
  if (!preflight(options, &error)) {
    std::fprintf(stderr, "ringside-bench: %s\n", error.c_str());
    return 1;
  }

  options.live_progress = isatty(STDOUT_FILENO) == 1;
  install_stop_handlers();
  RunResult result = run_client(options, &g_stop);
  std::fputs(format_text_report(options, result).c_str(), stdout);
  std::fflush(stdout);
  int status = 0;
  if (!json_path.empty() && !write_file(json_path, format_json_report(options, result), &error)) {
    std::fprintf(stderr, "ringside-bench: %s\n", error.c_str());
    status = 1;
  }
  if (!plot_path.empty() && !write_file(plot_path, format_svg_plot(options, result), &error)) {
    std::fprintf(stderr, "ringside-bench: %s\n", error.c_str());
    status = 1;
  }
  bool succeeded =
      options.mode == Mode::kTcp ? result.stats.payload_written > 0 : result.stats.requests > 0;
  if (!succeeded) {
    std::fprintf(
        stderr, "ringside-bench: no successful %s: %s\n",
        options.mode == Mode::kTcp ? "transfer" : "request",
        result.stats.first_error.empty() ? "no responses" : result.stats.first_error.c_str());
    status = 1;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "serve") return serve_main(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "relay") return relay_main(argc - 1, argv + 1);
  return client_main(argc, argv);
}
