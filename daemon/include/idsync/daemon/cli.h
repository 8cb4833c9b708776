// The operator's command line, `idsync`: validate, explain and plan.
//
// RunCli parses arguments, runs one command and returns its exit status
// (DESIGN.md: 0 done, 1 something failed, 2 bad configuration or usage,
// 3 plan refused by a safety limit). Output goes to `out`, diagnostics to
// `err`. Not thread-safe: one call at a time per process (it reads the
// environment for secrets).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace idsync::daemon {

// Exit statuses shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitBlocked = 3;

// Runs `idsync` with `args` (without the program name).
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace idsync::daemon
