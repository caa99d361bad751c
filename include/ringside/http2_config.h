// The HTTP/2 settings of ringside's listeners (--h2-* flags): plain data, filled by the
// command line (src/config/command_line.cc), read by the HTTP/2 codec. Defaults and
// limits follow Envoy's (RFC 9113 section 6.5.2 names each setting).
#pragma once

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
};

// The bounds the command line enforces.
inline constexpr uint32_t kMaxWindow = 0x7fffffff;  // 2^31-1, RFC 9113 section 6.9.1
inline constexpr uint32_t kMinWindow = 65535;       // the protocol's initial window
inline constexpr uint32_t kMinHeaderList = 1024;
inline constexpr uint32_t kMaxHeaderList = 1024 * 1024;
inline constexpr uint32_t kMaxHeaders = 10000;

}  // namespace ringside::http2
