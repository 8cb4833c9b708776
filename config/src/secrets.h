// Secret references in configuration strings: ${env:NAME} and ${file:NAME}.
// Internal to idsync::config.
//
// A SecretResolver substitutes every reference in a string. The loader uses
// it for the secret-bearing fields only (account.token, bind.password). Its error
// messages name the reference (and, for files, the path read), never the
// value: callers may show them to anyone. Not thread-safe (it may read the
// process environment); use one per load.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "idsync/base/status.h"

namespace idsync::config::internal {

class SecretResolver {
 public:
  using Getenv = std::function<std::optional<std::string>(const std::string&)>;

  // `getenv` unset: the process environment. `credentials_directory` unset:
  // $CREDENTIALS_DIRECTORY, looked up through `getenv`.
  SecretResolver(Getenv getenv, std::optional<std::string> credentials_directory);

  // `text` with every ${env:NAME} and ${file:NAME} replaced by its value and
  // every "$${" by a literal "${". kInvalidArgument (message without a
  // position) for a malformed reference, an unset or empty variable, or a
  // file that cannot be read or is empty.
  Result<std::string> Expand(std::string_view text) const;

  // Checks the references in `text` as Expand does, without reading any:
  // kInvalidArgument for a malformed or unterminated one.
  Status CheckSyntax(std::string_view text) const;

 private:
  std::optional<std::string> Lookup(const std::string& name) const;
  Result<std::string> ReadEnv(const std::string& name) const;
  Result<std::string> ReadFile(const std::string& name) const;
  // Expand, reading values only when `read`.
  Result<std::string> Substitute(std::string_view text, bool read) const;

  Getenv getenv_;
  std::optional<std::string> credentials_directory_;
};

}  // namespace idsync::config::internal
