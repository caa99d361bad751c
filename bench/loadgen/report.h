// Presenting a run: the text summary on stdout, --json, and the --plot SVG chart.
#pragma once

#include <string>

#include "client.h"

namespace ringside::bench {

// The percentiles every report shows.
inline constexpr double kReportPercentiles[] = {50, 75, 90, 99, 99.9, 99.99};

std::string mode_name(Mode mode);
// "http/1.1", "h2" (--h2) or "grpc" (--grpc).
std::string protocol_name(const ClientOptions& options);

// The human-readable summary (what wrk prints, plus errors by kind).
std::string format_text_report(const ClientOptions& options, const RunResult& result);

// Every number of the run as one JSON object.
std::string format_json_report(const ClientOptions& options, const RunResult& result);

// A latency percentile spectrum (log x axis in "number of nines", like HdrHistogram's
// plots) as a self-contained SVG document.
std::string format_svg_plot(const ClientOptions& options, const RunResult& result);

// Writes text to path; on failure error says why.
bool write_file(const std::string& path, const std::string& text, std::string* error);

}  // namespace ringside::bench
