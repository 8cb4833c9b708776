// idsyncd's controller (as in Kea): parses the command line, loads and checks
// the configuration, runs the Process, and turns signals into actions on a
// single thread that waits for them (no work in signal handlers):
//   SIGHUP          reload: a configuration that fails validation is refused
//                   and logged, and the old one keeps running;
//   SIGTERM/SIGINT  stop cleanly and exit 0.
//
// Not thread-safe: one controller per process, on the main thread.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace idsync::daemon {

// Runs `idsyncd` with `args` (without the program name): --config FILE,
// --check-config, --version, --help. Returns the exit status: 0 after a clean
// stop or a good check, 1 when it could not start or failed, 2 for a bad
// configuration or usage (with the FILE:LINE:COL error on `err`).
int RunDaemon(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace idsync::daemon
