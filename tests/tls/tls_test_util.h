// Test helpers for the TLS layer: certificate material from the issuer, an in-memory
// client/server pair that pumps each side's output into the other, and shell helpers
// for checking results with the openssl command line tool.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ringside/buffer.h"
#include "ringside/certs.h"
#include "ringside/tls.h"

namespace ringside::tls::testing {

inline int64_t now_seconds() { return static_cast<int64_t>(time(nullptr)); }

inline Identity make_ca(KeyType type = KeyType::kEcdsaP256, std::string cn = "test CA") {
  certs::CaOptions options;
  options.key_type = type;
  options.common_name = std::move(cn);
  std::string detail;
  auto ca = certs::create_ca(options, &detail);
  EXPECT_TRUE(ca.ok()) << detail;
  return ca.ok() ? ca.value() : Identity{};
}

inline Identity make_leaf(const Identity& ca, std::vector<std::string> sans,
                          KeyType type = KeyType::kEcdsaP256,
                          std::chrono::seconds lifetime = std::chrono::hours(24),
                          int64_t not_before = 0) {
  certs::LeafOptions options;
  options.dns_sans = std::move(sans);
  options.key_type = type;
  options.lifetime = lifetime;
  options.not_before = not_before;
  std::string detail;
  auto leaf = certs::issue_leaf(ca, options, &detail);
  EXPECT_TRUE(leaf.ok()) << detail;
  return leaf.ok() ? leaf.value() : Identity{};
}

// One side of an in-memory connection: a session, its output queue, and the
// ciphertext received from the peer that it has not consumed yet.
struct Side {
  Side(WOLFSSL_CTX* ctx, Role role, std::string_view sni = {}, std::string_view verify = {},
       std::string_view verify_uri = {})
      : session(ctx, role, sni, verify, verify_uri) {
    session.set_output(&out);
  }
  TlsSession session;
  ChunkQueue out;
  std::vector<uint8_t> pending;
  std::vector<uint8_t> received;  // plaintext read so far
  TlsStatus last = TlsStatus::kWantRead;

  // Hands pending ciphertext to the session, runs op, drops what it consumed.
  template <typename Op>
  TlsStatus feed(Op op) {
    session.set_input(pending.data(), pending.size());
    TlsStatus status = op();
    size_t consumed = pending.size() - session.input_pending();
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(consumed));
    session.set_input(nullptr, 0);
    return status;
  }
  TlsStatus handshake() {
    return last = feed([this] { return session.handshake(); });
  }
  // Reads all plaintext available; returns the final status (kWantRead when drained).
  TlsStatus read_all() {
    uint8_t buf[16384];
    while (true) {
      size_t n = 0;
      TlsStatus st = feed([&] { return session.read(buf, sizeof(buf), &n); });
      if (st != TlsStatus::kOk) return last = st;
      received.insert(received.end(), buf, buf + n);
    }
  }
};

// Moves every queued byte of from.out into to.pending; returns how many moved.
inline size_t transfer(Side& from, Side& to) {
  size_t moved = 0;
  while (!from.out.empty()) {
    auto span = from.out.front();
    to.pending.insert(to.pending.end(), span.begin(), span.end());
    moved += span.size();
    from.out.consume(span.size());
  }
  return moved;
}

// Runs both handshakes until both finish, one fails, or nothing moves.
inline void run_handshake(Side& client, Side& server) {
  for (int round = 0; round < 50; ++round) {
    if (!client.session.handshake_done()) client.handshake();
    size_t moved = transfer(client, server);
    if (!server.session.handshake_done()) server.handshake();
    moved += transfer(server, client);
    bool client_final = client.session.handshake_done() || client.last == TlsStatus::kError;
    bool server_final = server.session.handshake_done() || server.last == TlsStatus::kError;
    if ((client_final && server_final) || (moved == 0 && round > 0)) break;
  }
}

// Writes the file, returns its path inside dir.
inline std::string write_file(const std::string& dir, const std::string& name,
                              const std::string& content) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

inline std::string make_temp_dir() {
  char tmpl[] = "/tmp/ringside-test-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  return dir ? dir : "/tmp";
}

// Runs a shell command; returns its exit status and stdout+stderr in *output.
inline int run_command(const std::string& command, std::string* output) {
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  output->clear();
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline bool have_openssl() {
  std::string out;
  return run_command("openssl version", &out) == 0;
}

}  // namespace ringside::tls::testing
