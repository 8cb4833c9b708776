#include "secrets.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace idsync::config::internal {
namespace {

// A secret file larger than this is surely the wrong file; refusing it keeps
// a typo (a log file, a disk image) from being read into memory.
constexpr std::size_t kMaxSecretFileSize = 1024 * 1024;

bool IsEnvName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

}  // namespace

SecretResolver::SecretResolver(Getenv getenv, std::optional<std::string> credentials_directory)
    : getenv_(std::move(getenv)), credentials_directory_(std::move(credentials_directory)) {}

std::optional<std::string> SecretResolver::Lookup(const std::string& name) const {
  if (getenv_) return getenv_(name);
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Result<std::string> SecretResolver::ReadEnv(const std::string& name) const {
  std::optional<std::string> value = Lookup(name);
  if (!value) return InvalidArgumentError("secret ${env:" + name + "} is not set");
  // An empty secret is a deployment mistake (a variable declared but never
  // filled); catching it here beats a 401 at the first request.
  if (value->empty()) return InvalidArgumentError("secret ${env:" + name + "} is empty");
  return std::move(*value);
}

Result<std::string> SecretResolver::ReadFile(const std::string& name) const {
  const std::string ref = "${file:" + name + "}";
  std::string path = name;
  if (name.front() != '/') {
    std::optional<std::string> dir = credentials_directory_;
    if (!dir) dir = Lookup("CREDENTIALS_DIRECTORY");
    if (!dir || dir->empty()) {
      return InvalidArgumentError(ref +
                                  ": $CREDENTIALS_DIRECTORY is not set (systemd sets it for a "
                                  "unit's LoadCredential=; from a shell, give idsync "
                                  "--credentials-dir DIR)");
    }
    path = *dir;
    if (path.back() != '/') path += '/';
    path += name;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return InvalidArgumentError("secret " + ref + " cannot be read (" + path +
                                "): " + std::strerror(err));
  }
  std::string content;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return InvalidArgumentError("secret " + ref + " cannot be read (" + path +
                                  "): " + std::strerror(err));
    }
    if (n == 0) break;
    content.append(buffer, static_cast<std::size_t>(n));
    if (content.size() > kMaxSecretFileSize) {
      ::close(fd);
      return InvalidArgumentError("secret " + ref + " (" + path + ") is larger than 1 MiB");
    }
  }
  ::close(fd);
  // Files written by `echo` or an editor end in a newline that is not part
  // of the secret.
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) {
    content.pop_back();
  }
  if (content.empty()) return InvalidArgumentError("secret " + ref + " is empty");
  return content;
}

Result<std::string> SecretResolver::Expand(std::string_view text) const {
  return Substitute(text, /*read=*/true);
}

Status SecretResolver::CheckSyntax(std::string_view text) const {
  return Substitute(text, /*read=*/false).status();
}

Result<std::string> SecretResolver::Substitute(std::string_view text, bool read) const {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      return InvalidArgumentError("unterminated secret reference '" +
                                  std::string(text.substr(i, 40)) +
                                  "': write ${env:NAME} or ${file:NAME} (or $${ for a literal ${)");
    }
    std::string_view ref = text.substr(i + 2, close - i - 2);
    std::string_view whole = text.substr(i, close - i + 1);
    std::size_t colon = ref.find(':');
    std::string_view kind = ref.substr(0, colon);
    std::string name =
        colon == std::string_view::npos ? std::string() : std::string(ref.substr(colon + 1));
    bool env = kind == "env" && IsEnvName(name);
    bool file = kind == "file" && !name.empty();
    if (!env && !file) {
      return InvalidArgumentError("malformed secret reference '" + std::string(whole) +
                                  "': write ${env:NAME} or ${file:NAME} (or $${ for a literal ${)");
    }
    if (read) {
      Result<std::string> value = env ? ReadEnv(name) : ReadFile(name);
      if (!value.ok()) return value.status();
      out += *value;
    }
    i = close + 1;
  }
  return out;
}

}  // namespace idsync::config::internal
