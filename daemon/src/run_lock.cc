#include "idsync/daemon/run_lock.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace idsync::daemon {

RunLock::RunLock(std::string store_path) : path_(std::move(store_path) + ".lock") {}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status RunLock::Acquire(const std::string& holder) {
  fd_ = ::open(path_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ < 0) return UnavailableError("cannot open " + path_ + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    std::string who = Holder();
    std::istringstream in(who);
    std::string name, pid;
    in >> name >> pid;
    std::string named = name.empty() ? "another process" : name;
    if (!pid.empty()) named += " (pid " + pid + ")";
    return FailedPreconditionError("another idsync run is in progress: " + named +
                                   " holds the run lock " + path_);
  }
  // Whoever looks next sees who holds it; a stale text from a dead holder is
  // harmless (the flock is what counts).
  std::string text = holder + " " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] ssize_t n = ::pwrite(fd_, text.data(), text.size(), 0);
  }
  return Status::Ok();
}

std::string RunLock::Holder() const {
  std::ifstream in(path_);
  std::string line;
  std::getline(in, line);
  return line;
}

bool RunLock::HeldByDaemon() const { return Holder().rfind("idsyncd", 0) == 0; }

}  // namespace idsync::daemon
