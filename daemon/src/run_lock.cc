#include "idsync/daemon/run_lock.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
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

Status EnterStoreOwner(const std::string& sqlite_path) {
  if (::geteuid() != 0 || sqlite_path.empty() || sqlite_path == ":memory:") return Status::Ok();
  struct stat st {};
  std::string what = sqlite_path;
  if (::stat(sqlite_path.c_str(), &st) != 0) {
    // No store yet: whoever owns its directory will own it.
    what = std::filesystem::path(sqlite_path).parent_path().string();
    if (what.empty()) what = ".";
    if (::stat(what.c_str(), &st) != 0) return Status::Ok();  // Open reports the problem
  }
  if (st.st_uid == 0) return Status::Ok();
  const struct passwd* pw = ::getpwnam("idsync");
  if (pw != nullptr && pw->pw_uid == st.st_uid) {
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 ||
        ::setuid(pw->pw_uid) != 0) {
      return PermissionDeniedError(std::string("running as root, cannot switch to the idsync "
                                               "user that owns ") +
                                   what + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }
  const struct passwd* owner = ::getpwuid(st.st_uid);
  std::string owner_name = owner != nullptr ? owner->pw_name : std::to_string(st.st_uid);
  return PermissionDeniedError(
      "running as root would leave files in " + what + " that its owner (" + owner_name +
      ") cannot write; run idsync as that user, e.g. sudo -u " + owner_name + " idsync ...");
}

}  // namespace idsync::daemon
