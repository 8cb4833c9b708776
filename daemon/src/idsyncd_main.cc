// idsyncd: the daemon. Parses nothing itself: RunDaemon (controller.h) does.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "idsync/daemon/controller.h"

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    return idsync::daemon::RunDaemon(args, std::cout, std::cerr);
  } catch (const std::exception& e) {
    // Last resort: every expected failure is a Status long before this.
    std::cerr << "idsyncd: internal error: " << e.what() << "\n";
    return 1;
  }
}
