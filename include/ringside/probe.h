// `ringside probe`: the health check a container runtime runs inside the sidecar's own
// image, which has no curl. It asks the local admin server for GET /ready and turns the
// answer into an exit status (0 ready, 1 not ready) and one line, within a timeout.
// ECS `healthCheck`, Kubernetes `readinessProbe`/`startupProbe` and `dependsOn: HEALTHY`
// use it (deploy/ has the examples).
#pragma once

#include <string>

#include "ringside/address.h"
#include "ringside/config.h"

namespace ringside {

struct ProbeResult {
  bool ready = false;  // GET /ready answered 200
  int status = 0;      // the HTTP status, 0 when there was no answer
  std::string line;    // one line saying what happened, without the newline
};

// Connects to admin, sends GET /ready, reads the answer; everything within timeout.
// Blocking (a process of its own, never the proxy).
ProbeResult probe_ready(const SocketAddress& admin, Duration timeout);

// The subcommand: args are what follows "probe" on the command line (--admin ADDR,
// default 127.0.0.1:9901; --timeout DURATION per attempt, default 2s; --wait DURATION,
// default 0: ask again until ready or this has passed; --help). Prints the last attempt's
// line (on stdout) and returns the exit status: 0 ready, 1 not ready, 2 a bad flag (the
// problem on stderr).
int run_probe(int argc, const char* const* argv);

}  // namespace ringside
