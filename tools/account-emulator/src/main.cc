// account-emulator: serves the Account API (contracts/account-api.md) from
// memory until SIGTERM or SIGINT. Only parses flags; AccountEmulator does the rest.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <signal.h>
#include <unistd.h>

#include "idsync/emulator/emulator.h"

namespace {

constexpr const char* kUsage =
    "usage: account-emulator [--listen HOST:PORT] [--token T] [--read-only-token T]\n"
    "                        [--admin-token T] [--seed FILE] [--state FILE]\n"
    "                        [--faults JSON|@FILE] [--port-file FILE] [--random-seed N]\n"
    "                        [--threads N] [--verbose]\n"
    "Serves the Account API on HOST:PORT (default 127.0.0.1:0, any free port) until\n"
    "SIGTERM or SIGINT. Admin endpoints live under /_emulator/.\n";

bool ReadText(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

bool WritePortFile(const std::string& path, int port) {
  // Written beside and renamed, so a watcher never reads a half-written port.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

bool ParseInt(const std::string& s, long long lo, long long hi, long long* out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  *out = v;
  return true;
}

int Fail(const std::string& message) {
  std::cerr << "account-emulator: " << message << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    idsync::emulator::EmulatorOptions options;
    std::string port_file;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::cout << kUsage;
        return 0;
      }
      if (a == "--verbose") {
        options.verbose = true;
        continue;
      }
      if (i + 1 >= argc) return Fail(a + " needs a value\n" + kUsage);
      std::string v = argv[++i];
      long long n = 0;
      if (a == "--listen") {
        std::size_t colon = v.rfind(':');
        if (colon == std::string::npos || !ParseInt(v.substr(colon + 1), 0, 65535, &n)) {
          return Fail("--listen wants HOST:PORT, not " + v);
        }
        options.host = v.substr(0, colon);
        if (options.host.size() > 2 && options.host.front() == '[' && options.host.back() == ']') {
          options.host = options.host.substr(1, options.host.size() - 2);
        }
        options.port = static_cast<int>(n);
      } else if (a == "--token") {
        options.token = v;
      } else if (a == "--read-only-token") {
        options.read_only_token = v;
      } else if (a == "--admin-token") {
        options.admin_token = v;
      } else if (a == "--seed") {
        options.seed_file = v;
      } else if (a == "--state") {
        options.state_file = v;
      } else if (a == "--faults") {
        std::string text = v;
        if (v.starts_with("@") && !ReadText(v.substr(1), &text)) {
          return Fail("cannot read " + v.substr(1));
        }
        idsync::Result<idsync::emulator::Faults> faults = idsync::emulator::ParseFaults(text);
        if (!faults.ok()) return Fail(faults.status().message());
        options.faults = *faults;
      } else if (a == "--port-file") {
        port_file = v;
      } else if (a == "--random-seed") {
        if (!ParseInt(v, 0, std::numeric_limits<long long>::max(), &n)) {
          return Fail("--random-seed wants a non-negative integer");
        }
        options.random_seed = static_cast<std::uint64_t>(n);
      } else if (a == "--threads") {
        if (!ParseInt(v, 16, 1024, &n)) return Fail("--threads wants 16..1024");
        options.threads = static_cast<int>(n);
      } else {
        return Fail("unknown option " + a + "\n" + kUsage);
      }
    }

    // Block the stop signals before any thread starts, so that every thread
    // inherits the mask and only sigwait below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    auto emulator = idsync::emulator::AccountEmulator::Start(std::move(options));
    if (!emulator.ok()) return Fail(emulator.status().message());
    if (!port_file.empty() && !WritePortFile(port_file, (*emulator)->port())) {
      (*emulator)->Stop();
      return Fail("cannot write " + port_file);
    }
    std::cerr << "emulator.listening " << (*emulator)->base_url() << "\n";

    int signal = 0;
    sigwait(&stop_signals, &signal);
    (*emulator)->Stop();
    std::cerr << "emulator.stopped signal=" << signal << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "account-emulator: " << e.what() << "\n";
    return 1;
  }
}
