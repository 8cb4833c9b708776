// idsync: the operator's command line. Parses nothing itself: RunCli does.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "idsync/daemon/cli.h"

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    return idsync::daemon::RunCli(args, std::cout, std::cerr);
  } catch (const std::exception& e) {
    // Last resort: every expected failure is a Status long before this.
    std::cerr << "idsync: internal error: " << e.what() << "\n";
    return 1;
  }
}
