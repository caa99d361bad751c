// The HTTP/2 settings of ringside's listeners: plain data, the --h2-* flags filled by the
// command line (src/config/command_line.cc), the abuse bounds at their defaults; read by
// the HTTP/2 codec (ringside/http2.h), one struct for both. Defaults and
// limits follow Envoy's (RFC 9113 section 6.5.2 names each setting).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringside::http2 {

struct Settings {
  // SETTINGS_MAX_CONCURRENT_STREAMS advertised to each peer (1 to 2^31-1); beyond it a
  // new stream is refused with REFUSED_STREAM.
  uint32_t max_concurrent_streams = 100;
  // SETTINGS_INITIAL_WINDOW_SIZE: what a peer may send on one stream before the proxy
  // has drained it (65535 to 2^31-1).
  uint32_t initial_stream_window = 64 * 1024;
  // The connection's flow-control window, opened with a WINDOW_UPDATE on stream 0
  // (65535 to 2^31-1).
  uint32_t initial_connection_window = 1024 * 1024;
  // SETTINGS_MAX_HEADER_LIST_SIZE: decoded bytes of one header block, counted as RFC
  // 9113 does (name + value + 32 per field); beyond it the stream is reset (1 KiB to
  // 1 MiB).
  uint32_t max_header_list = 60 * 1024;
  // Header fields in one block, pseudo-headers included (1 to 10000).
  uint32_t max_headers = 100;

  // The bounds below have no flag: the codec's defaults (docs/http2.md).
  // SETTINGS_HEADER_TABLE_SIZE for our HPACK decoder, and the most our encoder uses
  // whatever the peer allows.
  uint32_t hpack_table_size = 4096;

  // Rapid Reset (CVE-2023-44487), server only: a token bucket of RST_STREAM frames the
  // peer may send (burst, refilled per second); beyond it, GOAWAY.
  uint64_t reset_burst = 1000;
  uint64_t reset_rate = 33;
  // CONTINUATION flood: most CONTINUATION frames after one HEADERS (connection error).
  size_t max_continuations = 8;
  // Ping and settings floods: most PING/SETTINGS acknowledgements queued and not yet
  // produced (connection error beyond), and most entries in one SETTINGS frame.
  size_t max_outbound_ack = 1000;
  size_t max_settings_entries = 32;
  // Glitches (MadeYouReset, CVE-2025-8671): stream resets and protocol errors this session
  // sends or observes on its own (invalid frames, malformed heads, refused streams, resets
  // it had to send, empty DATA frames without END_STREAM). A token bucket like the reset
  // limiter; when empty: GOAWAY(ENHANCE_YOUR_CALM) and a connection error.
  uint64_t glitch_burst = 1000;
  uint64_t glitch_rate = 33;

  // Milliseconds of a monotonic clock, for the glitch bucket; null: steady_clock.
  uint64_t (*now_ms)() = nullptr;
};

// The bounds the command line enforces.
inline constexpr uint32_t kMaxWindow = 0x7fffffff;  // 2^31-1, RFC 9113 section 6.9.1
inline constexpr uint32_t kMinWindow = 65535;       // the protocol's initial window
inline constexpr uint32_t kMinHeaderList = 1024;
inline constexpr uint32_t kMaxHeaderList = 1024 * 1024;
inline constexpr uint32_t kMaxHeaders = 10000;

}  // namespace ringside::http2
