#include "report.h"

#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "ringside/json.h"

namespace ringside::bench {

namespace {

std::string printf_string(const char* format, ...) __attribute__((format(printf, 1, 2)));

std::string printf_string(const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string percentile_label(double p) {
  std::string text = printf_string("%.4f", p);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text;
}

std::string target_text(const ClientOptions& options) {
  const Url& url = options.url;
  std::string text = url.scheme + "://";
  if (url.is_ipv6_literal()) {
    text.append("[").append(url.host).append("]");
  } else {
    text.append(url.host);
  }
  text.append(":").append(std::to_string(url.port));
  if (url.scheme == "http" || url.scheme == "https") text += url.target;
  return text;
}

// The protocol in a line of text: "HTTP/2", or "gRPC /pkg.Svc/Method" (empty for HTTP/1.1).
std::string protocol_text(const ClientOptions& options) {
  if (!options.grpc_path.empty()) return "gRPC " + options.grpc_path;
  return options.http2 ? "HTTP/2" : "";
}

unsigned long long ull(uint64_t value) { return static_cast<unsigned long long>(value); }

}  // namespace

std::string protocol_name(const ClientOptions& options) {
  if (!options.grpc_path.empty()) return "grpc";
  return options.http2 ? "h2" : "http/1.1";
}

std::string mode_name(Mode mode) {
  switch (mode) {
    case Mode::kHttp:
      return "http";
    case Mode::kHandshake:
      return "handshake";
    case Mode::kTcp:
      return "tcp";
  }
  return "http";
}

std::string format_text_report(const ClientOptions& options, const RunResult& result) {
  const RunStats& stats = result.stats;
  double seconds = result.elapsed_s > 0 ? result.elapsed_s : 1;
  std::string out;
  out += printf_string("%s load on %s for %.2fs: %u connection%s, ",
                       mode_name(options.mode).c_str(), target_text(options).c_str(), seconds,
                       options.connections, options.connections == 1 ? "" : "s");
  if (options.http2) {
    out += printf_string("%s, %u stream%s each, ", protocol_text(options).c_str(), options.streams,
                         options.streams == 1 ? "" : "s");
  }
  out += printf_string("%u thread%s, ", options.threads, options.threads == 1 ? "" : "s");
  if (options.rate > 0 && options.mode != Mode::kTcp) {
    out += printf_string("open loop at %.0f req/s\n", options.rate);
  } else if (options.mode == Mode::kTcp) {
    out += printf_string("writes of %zu bytes\n", options.write_size);
  } else {
    out += "closed loop\n";
  }
  if (result.interrupted) out += "  (interrupted: partial results)\n";
  if (options.mode == Mode::kTcp) {
    out += printf_string("  sent      %s  (%.2f MB/s)\n",
                         format_bytes(static_cast<double>(stats.payload_written)).c_str(),
                         static_cast<double>(stats.payload_written) / seconds / 1e6);
    out += printf_string("  received  %s  (%.2f MB/s)\n",
                         format_bytes(static_cast<double>(stats.payload_read)).c_str(),
                         static_cast<double>(stats.payload_read) / seconds / 1e6);
  } else {
    const LatencyHistogram& latency = stats.latency;
    out += printf_string("  Latency  mean %s  stdev %s  max %s\n",
                         format_duration_ns(latency.mean()).c_str(),
                         format_duration_ns(latency.stddev()).c_str(),
                         format_duration_ns(static_cast<double>(latency.max())).c_str());
    out += " ";
    for (double p : {50.0, 90.0, 99.0, 99.9}) {
      out += printf_string(" p%s %s ", percentile_label(p).c_str(),
                           format_duration_ns(static_cast<double>(latency.percentile(p))).c_str());
    }
    out += "\n";
    out += printf_string("  %llu requests in %.2fs, %s read\n",
                         static_cast<unsigned long long>(stats.requests), seconds,
                         format_bytes(static_cast<double>(stats.bytes_read)).c_str());
    out += printf_string("Requests/sec: %.2f\n", static_cast<double>(stats.requests) / seconds);
  }
  out += printf_string("Transfer/sec: %s\n",
                       format_bytes(static_cast<double>(stats.bytes_read) / seconds).c_str());
  if (options.url.tls || options.mode == Mode::kHandshake) {
    out += printf_string("Connections: %llu (%.2f/s)",
                         static_cast<unsigned long long>(stats.connections),
                         static_cast<double>(stats.connections) / seconds);
    if (options.url.tls) {
      out += printf_string(", TLS handshakes: %llu (%.2f/s), resumed: %llu",
                           static_cast<unsigned long long>(stats.handshakes),
                           static_cast<double>(stats.handshakes) / seconds,
                           static_cast<unsigned long long>(stats.resumed));
    }
    out += "\n";
  }
  if (!options.grpc_path.empty()) {
    out += printf_string("gRPC calls: %llu OK, %llu failed", ull(stats.grpc_status[0]),
                         ull(stats.errors.grpc));
    std::string by_status;
    for (int slot = 1; slot < kGrpcStatusSlots; ++slot) {
      if (stats.grpc_status[slot] == 0) continue;
      by_status +=
          printf_string("%s%s %llu", by_status.empty() ? "" : ", ",
                        std::string(grpc_status_name(slot)).c_str(), ull(stats.grpc_status[slot]));
    }
    out += by_status.empty() ? "\n" : " (" + by_status + ")\n";
  }
  const ErrorCounts& errors = stats.errors;
  if (errors.total() > 0) {
    out += printf_string(
        "Errors: %llu (connect %llu, tls %llu, timeout %llu, read %llu, write %llu, "
        "status %llu, grpc %llu); first: %s\n",
        static_cast<unsigned long long>(errors.total()),
        static_cast<unsigned long long>(errors.connect),
        static_cast<unsigned long long>(errors.tls),
        static_cast<unsigned long long>(errors.timeout),
        static_cast<unsigned long long>(errors.read), static_cast<unsigned long long>(errors.write),
        static_cast<unsigned long long>(errors.status), ull(errors.grpc),
        stats.first_error.c_str());
  } else {
    out += "Errors: 0\n";
  }
  return out;
}

std::string format_json_report(const ClientOptions& options, const RunResult& result) {
  const RunStats& stats = result.stats;
  const LatencyHistogram& latency = stats.latency;
  double seconds = result.elapsed_s > 0 ? result.elapsed_s : 1;
  std::string out = "{\n";
  out += printf_string("  \"target\": \"%s\",\n", json_escape(target_text(options)).c_str());
  out += printf_string("  \"mode\": \"%s\",\n", mode_name(options.mode).c_str());
  out += printf_string("  \"protocol\": \"%s\",\n  \"streams\": %u,\n",
                       protocol_name(options).c_str(), options.http2 ? options.streams : 1);
  out += printf_string("  \"connections\": %u,\n  \"threads\": %u,\n", options.connections,
                       options.threads);
  out += printf_string("  \"rate\": %.3f,\n", options.rate);
  out += printf_string("  \"duration_s\": %.6f,\n", seconds);
  out += printf_string("  \"interrupted\": %s,\n", result.interrupted ? "true" : "false");
  out += printf_string("  \"requests\": %llu,\n", static_cast<unsigned long long>(stats.requests));
  out +=
      printf_string("  \"requests_per_s\": %.3f,\n", static_cast<double>(stats.requests) / seconds);
  out += printf_string("  \"bytes_read\": %llu,\n  \"bytes_written\": %llu,\n",
                       static_cast<unsigned long long>(stats.bytes_read),
                       static_cast<unsigned long long>(stats.bytes_written));
  out += printf_string("  \"transfer_per_s\": %.3f,\n",
                       static_cast<double>(stats.bytes_read) / seconds);
  out += printf_string("  \"payload_read\": %llu,\n  \"payload_written\": %llu,\n",
                       static_cast<unsigned long long>(stats.payload_read),
                       static_cast<unsigned long long>(stats.payload_written));
  out += printf_string("  \"payload_mb_per_s\": %.3f,\n",
                       static_cast<double>(stats.payload_written) / seconds / 1e6);
  out += printf_string(
      "  \"connections_opened\": %llu,\n  \"handshakes\": %llu,\n  \"resumed\": %llu,\n",
      static_cast<unsigned long long>(stats.connections),
      static_cast<unsigned long long>(stats.handshakes),
      static_cast<unsigned long long>(stats.resumed));
  out += "  \"status\": {";
  for (int i = 1; i <= 5; ++i) {
    out +=
        printf_string("\"%dxx\": %llu%s", i,
                      static_cast<unsigned long long>(stats.status_classes[i]), i < 5 ? ", " : "");
  }
  out += "},\n";
  const ErrorCounts& e = stats.errors;
  out += printf_string(
      "  \"errors\": {\"total\": %llu, \"connect\": %llu, \"tls\": %llu, \"timeout\": %llu, "
      "\"read\": %llu, \"write\": %llu, \"status\": %llu, \"grpc\": %llu},\n",
      static_cast<unsigned long long>(e.total()), static_cast<unsigned long long>(e.connect),
      static_cast<unsigned long long>(e.tls), static_cast<unsigned long long>(e.timeout),
      static_cast<unsigned long long>(e.read), static_cast<unsigned long long>(e.write),
      static_cast<unsigned long long>(e.status), ull(e.grpc));
  if (!options.grpc_path.empty()) {
    out += printf_string(
        "  \"grpc\": {\"method\": \"%s\", \"message_size\": %zu, \"ok\": %llu, "
        "\"failed\": %llu, \"by_status\": {",
        json_escape(options.grpc_path).c_str(), options.message_size, ull(stats.grpc_status[0]),
        ull(e.grpc));
    const char* separator = "";
    for (int slot = 0; slot < kGrpcStatusSlots; ++slot) {
      if (stats.grpc_status[slot] == 0) continue;
      out += printf_string("%s\"%s\": %llu", separator, std::string(grpc_status_name(slot)).c_str(),
                           ull(stats.grpc_status[slot]));
      separator = ", ";
    }
    out += "}},\n";
  }
  out += printf_string("  \"first_error\": \"%s\",\n", json_escape(stats.first_error).c_str());
  out += "  \"latency_ns\": {";
  out += printf_string("\"count\": %llu, \"min\": %llu, \"mean\": %.1f, \"stdev\": %.1f, ",
                       static_cast<unsigned long long>(latency.count()),
                       static_cast<unsigned long long>(latency.min()), latency.mean(),
                       latency.stddev());
  for (double p : kReportPercentiles) {
    out += printf_string("\"p%s\": %llu, ", percentile_label(p).c_str(),
                         static_cast<unsigned long long>(latency.percentile(p)));
  }
  out += printf_string("\"max\": %llu}\n", static_cast<unsigned long long>(latency.max()));
  out += "}\n";
  return out;
}

std::string format_svg_plot(const ClientOptions& options, const RunResult& result) {
  const LatencyHistogram& latency = result.stats.latency;
  constexpr double kWidth = 900, kHeight = 520;
  constexpr double kLeft = 80, kRight = 30, kTop = 60, kBottom = 70;
  const double plot_w = kWidth - kLeft - kRight;
  const double plot_h = kHeight - kTop - kBottom;

  // x = log10(1 / (1 - p)): 0 at 0%, 1 at 90%, 2 at 99%, ... ("nines").
  auto points = latency.spectrum();
  uint64_t count = latency.count();
  double max_nines = 2;
  if (count > 0) max_nines = std::max(2.0, std::ceil(std::log10(static_cast<double>(count))));
  max_nines = std::min(max_nines, 6.0);
  double max_ms = std::max(static_cast<double>(latency.max()) / 1e6, 0.001);
  // A round upper bound for the y axis, so that five divisions give round ticks.
  double magnitude = std::pow(10.0, std::floor(std::log10(max_ms)));
  double y_top = magnitude;
  for (double step : {1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0}) {
    y_top = step * magnitude;
    if (y_top >= max_ms) break;
  }
  // Tick labels share one unit, chosen by the top of the axis.
  const char* tick_unit = y_top >= 1000 ? "s" : y_top >= 1 ? "ms" : "us";
  double tick_scale = y_top >= 1000 ? 1e-3 : y_top >= 1 ? 1 : 1e3;
  auto x_of = [&](double percentile) {
    double rest = 1.0 - percentile / 100.0;
    double nines = rest <= 0 ? max_nines : std::min(max_nines, -std::log10(rest));
    return kLeft + plot_w * nines / max_nines;
  };
  auto y_of = [&](double ms) { return kTop + plot_h * (1.0 - ms / y_top); };

  std::string svg = printf_string(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
      kWidth, kHeight, kWidth, kHeight);
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::string title = "Latency by percentile: " + target_text(options);
  svg +=
      printf_string("<text x=\"%.0f\" y=\"24\" font-size=\"16\" font-weight=\"bold\">%s</text>\n",
                    kLeft, xml_escape(title).c_str());
  std::string subtitle = printf_string(
      "%s, %u connections%s, %s, %.0f s, %llu requests, p50 %s, p99 %s, max %s",
      mode_name(options.mode).c_str(), options.connections,
      options.http2
          ? printf_string(" x %u streams (%s)", options.streams, protocol_text(options).c_str())
                .c_str()
          : "",
      options.rate > 0 ? printf_string("%.0f req/s open loop", options.rate).c_str()
                       : "closed loop",
      result.elapsed_s, static_cast<unsigned long long>(count),
      format_duration_ns(static_cast<double>(latency.percentile(50))).c_str(),
      format_duration_ns(static_cast<double>(latency.percentile(99))).c_str(),
      format_duration_ns(static_cast<double>(latency.max())).c_str());
  svg += printf_string("<text x=\"%.0f\" y=\"44\" fill=\"#555\">%s</text>\n", kLeft,
                       xml_escape(subtitle).c_str());

  // Grid and axes.
  for (int i = 0; i <= 5; ++i) {
    double ms = y_top * i / 5;
    double y = y_of(ms);
    svg +=
        printf_string("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                      kLeft, y, kLeft + plot_w, y);
    svg += printf_string("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g%s</text>\n", kLeft - 8,
                         y + 4, ms * tick_scale, tick_unit);
  }
  for (int nines = 0; nines <= static_cast<int>(max_nines); ++nines) {
    double p = 100.0 * (1.0 - std::pow(10.0, -nines));
    double x = x_of(p);
    svg +=
        printf_string("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                      x, kTop, x, kTop + plot_h);
    svg += printf_string("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s%%</text>\n", x,
                         kTop + plot_h + 18, percentile_label(p).c_str());
  }
  svg += printf_string(
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
      "stroke=\"#333\"/>\n",
      kLeft, kTop, plot_w, plot_h);
  svg += printf_string("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">percentile</text>\n",
                       kLeft + plot_w / 2, kHeight - 20);
  svg += printf_string(
      "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">latency</text>\n",
      kTop + plot_h / 2);

  // The spectrum as a step line: each point holds its latency up to its percentile.
  if (!points.empty()) {
    std::string path = printf_string("M%.1f %.1f", x_of(0),
                                     y_of(static_cast<double>(points.front().value_ns) / 1e6));
    double previous_p = 0;
    for (const auto& point : points) {
      double y = y_of(static_cast<double>(point.value_ns) / 1e6);
      path +=
          printf_string(" L%.1f %.1f L%.1f %.1f", x_of(previous_p), y, x_of(point.percentile), y);
      previous_p = point.percentile;
    }
    svg += "<path d=\"" + path +
           "\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n";
    // Markers at the reported percentiles.
    for (double p : {50.0, 90.0, 99.0, 99.9}) {
      if (-std::log10(1.0 - p / 100.0) > max_nines) continue;
      double ms = static_cast<double>(latency.percentile(p)) / 1e6;
      svg += printf_string("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#d62728\"/>\n",
                           x_of(p), y_of(ms));
      // Labels sit above and left of their marker (clear of the rising curve), unless
      // that would cross the y axis.
      bool room_left = x_of(p) - kLeft > 110;
      svg += printf_string(
          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"#d62728\">p%s %s</text>\n",
          room_left ? x_of(p) - 6 : x_of(p) + 6, y_of(ms) - 8, room_left ? "end" : "start",
          percentile_label(p).c_str(), format_duration_ns(ms * 1e6).c_str());
    }
  } else {
    svg += printf_string("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no samples</text>\n",
                         kLeft + plot_w / 2, kTop + plot_h / 2);
  }
  svg += "</svg>\n";
  return svg;
}

bool write_file(const std::string& path, const std::string& text, std::string* error) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  ok = std::fclose(file) == 0 && ok;
  if (!ok) *error = "cannot write " + path + ": " + std::strerror(errno);
  return ok;
}

}  // namespace ringside::bench
