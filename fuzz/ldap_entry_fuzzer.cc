// What the ldap source makes of a directory server's answers: the BER of
// search result entries, references and results, decoded by libldap and read
// by the source's full read (connectors/ldap/src/full_read.h: users, disabled
// users, groups, ranged members, in-chain users) into a snapshot. A hostile
// or broken server is an input too.
//
// The server is scripted: the answers are written ahead into one end of a
// socket pair whose other end is a libldap handle (ldap_init_fd), and the
// writing side is then shut, so a conversation that asks for more than was
// written ends at once on end of file, never waits.
//
// Input: one byte of options, then the answers to the searches in the order
// the read sends them (message id 1, 2, ...), separated by "\xfe\xfe". An
// answer is messages separated by "\xfd\xfd"; each message is a protocolOp
// tag byte (0x64 entry, 0x73 reference, 0x65 result, or any one-byte tag) and its
// body, wrapped here into an LDAPMessage with the answer's id. A result gets
// the paged-results control with an empty cookie; an answer without one ends
// with success.
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <openldap.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"
#include "full_read.h"
#include "snapshot_builder.h"

namespace {

namespace in = idsync::ldap::internal;
using idsync::ldap::Flavor;
using idsync::ldap::LdapConfig;

// A BER length.
std::string Length(std::size_t n) {
  if (n < 0x80) return std::string(1, static_cast<char>(n));
  std::string bytes;
  while (n > 0) {
    bytes.insert(bytes.begin(), static_cast<char>(n & 0xff));
    n >>= 8;
  }
  return std::string(1, static_cast<char>(0x80 | bytes.size())) + bytes;
}

std::string Tlv(unsigned char tag, std::string_view body) {
  return std::string(1, static_cast<char>(tag)) + Length(body.size()) + std::string(body);
}

// LDAPMessage { messageID, protocolOp [, controls] }.
std::string Message(int id, unsigned char tag, std::string_view body, std::string_view controls) {
  std::string inner = Tlv(0x02, std::string(1, static_cast<char>(id)));
  inner += Tlv(tag, body);
  inner += controls;
  return Tlv(0x30, inner);
}

// [0] Controls with the paged-results control, size 0, empty cookie.
std::string PageControl() {
  const std::string value = Tlv(0x30, Tlv(0x02, std::string(1, '\0')) + Tlv(0x04, ""));
  const std::string control = Tlv(0x30, Tlv(0x04, LDAP_CONTROL_PAGEDRESULTS) + Tlv(0x04, value));
  return Tlv(0xa0, control);
}

// A successful LDAPResult: resultCode 0, empty matchedDN and message.
std::string SuccessBody() {
  return Tlv(0x0a, std::string(1, '\0')) + Tlv(0x04, "") + Tlv(0x04, "");
}

std::vector<std::string_view> Split(std::string_view text, std::string_view separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + separator.size());
  }
}

// The server's side of the conversation, every answer in order.
std::string Script(std::string_view answers) {
  std::string wire;
  int id = 0;
  for (std::string_view answer : Split(answers, "\xfe\xfe")) {
    if (++id > 100) break;  // message ids stay one byte, positive
    bool ended = false;
    for (std::string_view message : Split(answer, "\xfd\xfd")) {
      if (message.empty()) continue;
      auto tag = static_cast<unsigned char>(message[0]);
      // A tag in the high-tag-number form (low five bits set) takes its
      // number from the bytes after it, and one libldap cannot decode makes
      // it keep the search's request for ever: try_read1msg (libldap 2.5 and
      // 2.6) returns the decoding error without giving back the reference it
      // took, so not even the unbind frees it (about 4 KB each; listed in
      // fuzz/README.md; the source never reuses a handle after an error).
      // Not our code: such tags are sent as the one-byte tag below them.
      if ((tag & 0x1f) == 0x1f) tag ^= 0x01;
      const bool result = tag == 0x65;
      wire += Message(id, tag, message.substr(1), result ? PageControl() : "");
      if (result) ended = true;
    }
    if (!ended) wire += Message(id, 0x65, SuccessBody(), PageControl());
  }
  return wire;
}

LdapConfig Source(std::uint8_t options) {
  LdapConfig source;
  source.name = "dir";
  source.urls = {"ldap://directory.invalid"};
  source.flavor = (options & 1) != 0 ? Flavor::kActiveDirectory : Flavor::kOpenLdap;
  source.users.base = "ou=people,dc=corp,dc=example";
  source.users.filter = "(objectClass=person)";
  if ((options & 2) != 0) source.users.disabled_filter = "(accountDisabled=TRUE)";
  if ((options & 8) != 0) source.users.id = "employeeID";
  source.groups.base = (options & 16) != 0 ? "" : "ou=groups,dc=corp,dc=example";
  source.groups.in_chain = (options & 5) == 5;  // Active Directory only
  source.groups.max_depth = 4;
  source.page_size = 100;
  source.timeout = std::chrono::seconds(2);
  return source;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The peer's end stays open while the handle is used, but a failure must
  // not kill the process should a write find it closed.
  std::signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 65536) return 0;
  const LdapConfig source = Source(data[0]);
  const std::string wire =
      Script(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));

  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  const int buffer = 4 << 20;
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  // What does not fit is left out: the conversation then ends early.
  std::size_t written = 0;
  while (written < wire.size()) {
    const ssize_t n = write(fds[1], wire.data() + written, wire.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  shutdown(fds[1], SHUT_WR);

  LDAP* ld = nullptr;
  if (ldap_init_fd(fds[0], LDAP_PROTO_TCP, "ldap://directory.invalid", &ld) != LDAP_SUCCESS) {
    std::abort();
  }
  int version = LDAP_VERSION3;
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
  {
    in::Connection connection;
    connection.ld.reset(ld);
    connection.url = "ldap://directory.invalid";
    connection.watchdog = std::make_unique<in::Watchdog>(fds[0]);

    in::Session session(source, connection, nullptr);
    in::SnapshotBuilder builder(source.name, source.groups.nested, source.groups.max_depth);
    std::size_t users = 0;
    idsync::Status status =
        in::ReadUsers(source, session, builder, [&](std::size_t read) { users = read; });
    in::GroupsRead groups;
    if (status.ok() && !source.groups.base.empty()) {
      const std::atomic<bool> never{false};
      status = in::ReadGroups(source, session, &groups, never);
    }
    if (status.ok()) status = in::MergeGroups(groups, builder);
    // IDSYNC_FUZZ_VERBOSE=1 says what became of each input (for seeds).
    static const bool verbose = std::getenv("IDSYNC_FUZZ_VERBOSE") != nullptr;
    if (verbose) {
      std::fprintf(stderr, "ldap_entry: %s; %zu users, %zu groups read\n",
                   status.ok() ? "ok" : std::string(status.message()).c_str(), users,
                   groups.groups.size());
    }
    if (status.ok()) {
      in::BuildCounts counts;
      const idsync::mapping::SourceSnapshot snapshot = builder.Finish(&counts);
      // Nothing is made up: every user and group came from an entry.
      if (snapshot.users.size() != users) std::abort();
      if (snapshot.groups.size() != groups.groups.size()) std::abort();
    }
  }
  close(fds[1]);
  return 0;
}
