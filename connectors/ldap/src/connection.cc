// Connecting to and reading from an LDAP server over libldap (~770 lines):
// TCP connect with its own deadline, TLS and SASL/simple binds, the
// watchdog that interrupts a stalled call, paging sessions and entry
// reading. One file because each step's errors are mapped the same way
// (LdapError, Diagnostic) and libldap types stay inside it.

#include "connection.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openldap.h>
#include <poll.h>
#include <pthread.h>
#include <sasl/sasl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace idsync::ldap::internal {

SigpipeGuard::SigpipeGuard() {
  sigemptyset(&pipe_);
  sigaddset(&pipe_, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
}

SigpipeGuard::~SigpipeGuard() {
  if (!was_pending_) {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

timeval ToTimeval(std::chrono::microseconds duration) {
  if (duration.count() < 0) duration = std::chrono::microseconds(0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration.count() / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(duration.count() % 1'000'000);
  return tv;
}

int ResultCode(LDAP* ld) {
  int code = LDAP_OTHER;
  if (ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &code) != LDAP_OPT_SUCCESS) return LDAP_OTHER;
  return code;
}

std::string Diagnostic(LDAP* ld) {
  char* text = nullptr;
  if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &text) != LDAP_OPT_SUCCESS ||
      text == nullptr) {
    return {};
  }
  LdapString owned(text);
  return std::string(owned.get());
}

// "what: <the result code's text> (<the server's or library's diagnostic>)",
// with the code's canonical status. Never given a secret.
Status LdapError(int result_code, const std::string& what, const std::string& diagnostic) {
  StatusCode code = internal::CodeForLdapResult(result_code);
  if (code == StatusCode::kOk) code = StatusCode::kInternal;
  std::string message = what + ": " + ldap_err2string(result_code);
  // GnuTLS failures reach libldap as an "(unknown error code)" diagnostic,
  // which only confuses.
  if (!diagnostic.empty() && diagnostic != ldap_err2string(result_code) &&
      diagnostic != "(unknown error code)") {
    message += " (" + diagnostic + ")";
  }
  return Status(code, std::move(message));
}

namespace {

Status OptionError(const std::string& url, const char* option) {
  return InternalError(url + ": cannot set the libldap option " + option);
}

// libldap asks for SASL parameters through this callback; EXTERNAL needs
// none beyond the defaults (no authorization identity: the one the
// transport proved is used).
int SaslInteract(LDAP* /*ld*/, unsigned /*flags*/, void* /*defaults*/, void* prompts) {
  for (auto* prompt = static_cast<sasl_interact_t*>(prompts); prompt->id != SASL_CB_LIST_END;
       ++prompt) {
    const char* value = prompt->defresult != nullptr ? prompt->defresult : "";
    prompt->result = value;
    prompt->len = static_cast<unsigned>(std::strlen(value));
  }
  return LDAP_SUCCESS;
}

}  // namespace

// Why a watchdog: with a network timeout set, Debian's GnuTLS build
// busy-loops in a handshake the server never answers; without one, it
// blocks for ever.
Watchdog::Watchdog(int fd) : fd_(fd), thread_([this] { Run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Watchdog::Arm(SteadyClock::time_point deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    deadline_ = deadline;
  }
  wake_.notify_one();
}

void Watchdog::Disarm() {
  std::lock_guard<std::mutex> lock(mutex_);
  deadline_.reset();
}

void Watchdog::FireNow() {
  std::lock_guard<std::mutex> lock(mutex_);
  ::shutdown(fd_, SHUT_RDWR);
  fired_ = true;
}

void Watchdog::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    if (!deadline_) {
      wake_.wait(lock);
      continue;
    }
    SteadyClock::time_point deadline = *deadline_;
    if (wake_.wait_until(lock, deadline) == std::cv_status::timeout && deadline_ == deadline) {
      ::shutdown(fd_, SHUT_RDWR);
      fired_ = true;
      deadline_.reset();
    }
  }
}

namespace {

// A TCP connection to the URL's host and port, made by us rather than by
// libldap so that connect_timeout bounds it without libldap's non-blocking
// mode (see Watchdog). The socket is returned blocking.
Result<int> ConnectTcp(const ConnectPlan& plan) {
  LDAPURLDesc* parsed = nullptr;
  if (ldap_url_parse(plan.url.c_str(), &parsed) != LDAP_URL_SUCCESS || parsed == nullptr) {
    return InvalidArgumentError(plan.url + ": not a usable LDAP URL");
  }
  std::string host =
      parsed->lud_host != nullptr && *parsed->lud_host != '\0' ? parsed->lud_host : "localhost";
  int port = parsed->lud_port != 0 ? parsed->lud_port
                                   : (plan.scheme == internal::Scheme::kLdaps ? 636 : 389);
  ldap_free_urldesc(parsed);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  int resolved = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &addresses);
  if (resolved != 0) {
    return UnavailableError(plan.url + ": cannot resolve '" + host +
                            "': " + ::gai_strerror(resolved));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(addresses, ::freeaddrinfo);

  const SteadyClock::time_point deadline = SteadyClock::now() + plan.connect_timeout;
  std::string failure = "no address";
  bool timed_out = false;
  for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      failure = std::strerror(errno);
      continue;
    }
    int error = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
    if (error == EINPROGRESS) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      pollfd wait{fd, POLLOUT, 0};
      int ready;
      do {
        ready = ::poll(&wait, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
      } while (ready < 0 && errno == EINTR);
      if (ready == 0) {
        ::close(fd);
        timed_out = true;
        break;  // the deadline covers every address
      }
      socklen_t length = sizeof error;
      if (ready < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    }
    if (error == 0) {
      // Requests are small and answered one by one; without this, Nagle's
      // algorithm and delayed acknowledgements add tens of milliseconds to
      // round trips (libldap sets it on the sockets it connects).
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int flags = ::fcntl(fd, F_GETFL);
      if (flags >= 0 && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0) return fd;
      error = errno;
    }
    ::close(fd);
    failure = std::strerror(error);
  }
  if (timed_out) {
    return DeadlineExceededError(plan.url + ": connect: no answer within " +
                                 std::to_string(plan.connect_timeout.count()) + " ms");
  }
  return UnavailableError(plan.url + ": connect: " + failure);
}

// Sets the handle's options: protocol, referrals, timeouts and, for TLS,
// the verification settings in a TLS context of its own.
Status SetOptions(LDAP* ld, const ConnectPlan& plan) {
  int version = LDAP_VERSION3;
  if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS) {
    return OptionError(plan.url, "LDAP_OPT_PROTOCOL_VERSION");
  }
  // A referral is never chased: it would read a server nobody configured,
  // possibly with our credentials. The search sees it and fails instead.
  if (ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS) {
    return OptionError(plan.url, "LDAP_OPT_REFERRALS");
  }
  // Bounds the synchronous calls (StartTLS, bind); searches wait with their
  // own deadline. LDAP_OPT_NETWORK_TIMEOUT stays unset on purpose: the
  // connect is ours, and the option makes handshakes spin (see Watchdog).
  timeval operation = ToTimeval(plan.timeout);
  if (ldap_set_option(ld, LDAP_OPT_TIMEOUT, &operation) != LDAP_OPT_SUCCESS) {
    return OptionError(plan.url, "LDAP_OPT_TIMEOUT");
  }
  if (!plan.tls) return Status::Ok();

  // Options set on the handle only take effect in a TLS context made for it
  // (LDAP_OPT_X_TLS_NEWCTX, last); the process-wide defaults, which
  // /etc/ldap/ldap.conf and LDAPTLS_* shape, are left alone.
  int require = plan.cert_check == internal::CertCheck::kDemand ? LDAP_OPT_X_TLS_DEMAND
                                                                : LDAP_OPT_X_TLS_NEVER;
  if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) != LDAP_OPT_SUCCESS) {
    return OptionError(plan.url, "LDAP_OPT_X_TLS_REQUIRE_CERT");
  }
  int minimum = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
  if (ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &minimum) != LDAP_OPT_SUCCESS) {
    return OptionError(plan.url, "LDAP_OPT_X_TLS_PROTOCOL_MIN");
  }
  if (!plan.ca_file.empty() &&
      ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, plan.ca_file.c_str()) != LDAP_OPT_SUCCESS) {
    return OptionError(plan.url, "LDAP_OPT_X_TLS_CACERTFILE");
  }
  if (!plan.cert.empty()) {
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_CERTFILE, plan.cert.c_str()) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_KEYFILE, plan.key.c_str()) != LDAP_OPT_SUCCESS) {
      return OptionError(plan.url, "LDAP_OPT_X_TLS_CERTFILE");
    }
  }
  int is_server = 0;
  if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server) != LDAP_OPT_SUCCESS) {
    // The files are read here: a missing or unreadable CA, certificate or
    // key is a configuration problem, the same on every URL.
    std::string detail = Diagnostic(ld);
    return InvalidArgumentError(plan.url +
                                ": cannot set up TLS from tls.ca_file, tls.cert and tls.key" +
                                (detail.empty() ? "" : " (" + detail + ")"));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Connection>> Open(const ConnectPlan& plan, const BindConfig& bind) {
  auto connection = std::make_unique<Connection>();
  Connection& open = *connection;
  open.url = plan.url;
  int fd = -1;
  if (plan.scheme == internal::Scheme::kLdapi) {
    // A local socket: libldap connects it (nothing to wait for, no TLS).
    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, plan.url.c_str());
    if (rc != LDAP_SUCCESS || raw == nullptr) {
      return InvalidArgumentError(plan.url + ": not a usable LDAP URL: " + ldap_err2string(rc));
    }
    open.ld.reset(raw);
    RETURN_IF_ERROR(SetOptions(open.ld.get(), plan));
    rc = ldap_connect(open.ld.get());
    if (rc != LDAP_SUCCESS) {
      return UnavailableError(
          LdapError(rc, plan.url + ": connect", Diagnostic(open.ld.get())).message());
    }
    if (ldap_get_option(open.ld.get(), LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) {
      return InternalError(plan.url + ": libldap gave no socket after connecting");
    }
  } else {
    ASSIGN_OR_RETURN(fd, ConnectTcp(plan));
    LDAP* raw = nullptr;
    int rc = ldap_init_fd(fd, LDAP_PROTO_TCP, plan.url.c_str(), &raw);
    if (rc != LDAP_SUCCESS || raw == nullptr) {
      ::close(fd);
      return InvalidArgumentError(plan.url + ": not a usable LDAP URL: " + ldap_err2string(rc));
    }
    open.ld.reset(raw);  // owns the socket from here on
    RETURN_IF_ERROR(SetOptions(open.ld.get(), plan));
  }
  LDAP* ld = open.ld.get();
  open.watchdog = std::make_unique<Watchdog>(fd);
  // Securing, binding and the probe below share one deadline.
  Armed armed(*open.watchdog, SteadyClock::now() + plan.timeout + kWatchdogGrace);

  // The TLS hint: libldap reports certificate problems as "Can't contact
  // LDAP server", and checks a "localhost" URL against this machine's name.
  auto connection_error = [&](int code, const std::string& what) {
    if (open.watchdog->fired()) {
      return DeadlineExceededError(plan.url + ": " + what + ": no answer within " +
                                   std::to_string(plan.timeout.count()) + " ms");
    }
    Status status = LdapError(code, plan.url + ": " + what, Diagnostic(ld));
    std::string message = status.message();
    if (plan.tls) {
      message += "; if the server answers, check its certificate against " +
                 (plan.ca_file.empty() ? std::string("the system CAs") : "'" + plan.ca_file + "'");
      if (plan.localhost) {
        message +=
            " (for a 'localhost' URL libldap checks the certificate against this machine's "
            "host name)";
      }
    }
    StatusCode out = status.code();
    if (out != StatusCode::kDeadlineExceeded) out = StatusCode::kUnavailable;
    return Status(out, std::move(message));
  };

  int rc = LDAP_SUCCESS;
  if (plan.scheme == internal::Scheme::kLdaps) {
    rc = ldap_install_tls(ld);
    if (rc != LDAP_SUCCESS) return connection_error(rc, "TLS handshake");
  }
  if (plan.start_tls) {
    // No fallback to plain text: a failed StartTLS ends this URL.
    rc = ldap_start_tls_s(ld, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) return connection_error(rc, "StartTLS");
  }

  switch (plan.bind) {
    case BindConfig::Kind::kAnonymous:
      break;
    case BindConfig::Kind::kSimple: {
      berval credentials{};
      credentials.bv_val = const_cast<char*>(bind.password.data());
      credentials.bv_len = bind.password.size();
      rc = ldap_sasl_bind_s(ld, bind.dn.c_str(), LDAP_SASL_SIMPLE, &credentials, nullptr, nullptr,
                            nullptr);
      if (rc != LDAP_SUCCESS) {
        if (open.watchdog->fired()) return connection_error(rc, "bind");
        return LdapError(rc, plan.url + ": bind as '" + bind.dn + "'", Diagnostic(ld));
      }
      break;
    }
    case BindConfig::Kind::kSaslExternal:
      rc = ldap_sasl_interactive_bind_s(ld, nullptr, "EXTERNAL", nullptr, nullptr, LDAP_SASL_QUIET,
                                        SaslInteract, nullptr);
      if (rc != LDAP_SUCCESS) {
        if (open.watchdog->fired()) return connection_error(rc, "SASL EXTERNAL bind");
        return LdapError(rc, plan.url + ": SASL EXTERNAL bind", Diagnostic(ld));
      }
      break;
  }

  // A TCP connect can succeed against a listener that closes at once (a
  // balancer without a backend); reading the root DSE proves that an LDAP
  // server answers here before the read commits to this URL. Its
  // supportedControl tells the feeds which controls they may send; a server
  // that hides it (an error result, no entry) still answered.
  const char* probe_attributes[] = {"supportedControl", nullptr};
  int probe_id = 0;
  rc = ldap_search_ext(ld, "", LDAP_SCOPE_BASE, "(objectClass=*)",
                       const_cast<char**>(probe_attributes), 0, nullptr, nullptr, nullptr, 1,
                       &probe_id);
  if (rc != LDAP_SUCCESS) return connection_error(rc, "reading the root DSE");
  const SteadyClock::time_point deadline = SteadyClock::now() + plan.timeout;
  while (true) {
    timeval wait = ToTimeval(
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - SteadyClock::now()));
    LDAPMessage* raw_message = nullptr;
    int type = ldap_result(ld, probe_id, LDAP_MSG_ONE, &wait, &raw_message);
    Message message(raw_message);
    if (type == 0) {
      return DeadlineExceededError(plan.url + ": no answer to a root DSE read within " +
                                   std::to_string(plan.timeout.count()) + " ms");
    }
    if (type < 0) return connection_error(ResultCode(ld), "reading the root DSE");
    if (type == LDAP_RES_SEARCH_ENTRY) {
      open.supported_controls = Values(ld, message.get(), "supportedControl");
    }
    if (type == LDAP_RES_SEARCH_RESULT) break;
  }
  return connection;
}

}  // namespace

bool Connection::Supports(std::string_view oid) const {
  return std::find(supported_controls.begin(), supported_controls.end(), oid) !=
         supported_controls.end();
}

Result<std::unique_ptr<Connection>> OpenConnection(const LdapConfig& source) {
  std::vector<std::string> failures;
  Status last;
  for (const std::string& url : source.urls) {
    Result<ConnectPlan> plan = PlanConnection(source, url);
    if (!plan.ok()) return plan.status();
    Result<std::unique_ptr<Connection>> connection = Open(*plan, source.bind);
    if (connection.ok()) return connection;
    last = connection.status();
    // Only an unreachable server sends us to the next URL: a refused bind
    // would be refused there too, and retrying it can lock the account.
    if (last.code() != StatusCode::kUnavailable && last.code() != StatusCode::kDeadlineExceeded) {
      return last.WithContext("source '" + source.name + "'");
    }
    failures.push_back(last.message());
  }
  std::string message = "source '" + source.name + "': ";
  if (failures.size() > 1) message += "no URL could be used: ";
  return Status(last.code(), message + Join(failures, "; "));
}

Result<std::unique_ptr<Connection>> OpenConnectionTo(const LdapConfig& source,
                                                     const std::string& url) {
  ASSIGN_OR_RETURN(ConnectPlan plan, PlanConnection(source, url));
  Result<std::unique_ptr<Connection>> connection = Open(plan, source.bind);
  if (!connection.ok()) return connection.status().WithContext("source '" + source.name + "'");
  return connection;
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

Session::Session(const LdapConfig& source, Connection& connection, std::size_t* pages)
    : source_(source),
      ld_(connection.ld.get()),
      watchdog_(*connection.watchdog),
      prefix_("source '" + source.name + "': " + connection.url + ": "),
      pages_(pages) {}

Status Session::Error(StatusCode code, const std::string& message) const {
  return Status(code, prefix_ + message);
}

Status Session::Ldap(int result_code, const std::string& what,
                     const std::string& diagnostic) const {
  Status status = LdapError(result_code, what, diagnostic);
  return Status(status.code(), prefix_ + status.message());
}

std::string Session::ReferralText(char** referrals) {
  if (referrals == nullptr || referrals[0] == nullptr) return "";
  std::vector<std::string> list;
  for (char** r = referrals; *r != nullptr; ++r) list.push_back(*r);
  return " to " + Join(list, ", ");
}

Status Session::CheckResult(const std::string& what, const std::string& base, LDAPMessage* done,
                            LDAPControl*** controls_out) {
  int result_code = LDAP_SUCCESS;
  char* matched = nullptr;
  char* text = nullptr;
  char** referrals = nullptr;
  LDAPControl** controls = nullptr;
  int rc = ldap_parse_result(ld_, done, &result_code, &matched, &text, &referrals, &controls, 0);
  LdapString matched_owner(matched);
  LdapString text_owner(text);
  std::unique_ptr<char*, ReferralsDeleter> referrals_owner(referrals);
  std::unique_ptr<LDAPControl*, ControlsDeleter> controls_owner(controls);
  if (rc != LDAP_SUCCESS) return Ldap(rc, what + ": reading the result", Diagnostic(ld_));
  if (result_code == LDAP_REFERRAL) {
    return Error(StatusCode::kFailedPrecondition,
                 what + ": the server answered with a referral" + ReferralText(referrals) +
                     "; referrals are not followed: point url at a server that holds '" + base +
                     "'");
  }
  if (result_code != LDAP_SUCCESS) return Ldap(result_code, what, text != nullptr ? text : "");
  if (controls_out != nullptr) *controls_out = controls_owner.release();
  return Status::Ok();
}

Status Session::Search(const std::string& what, const std::string& base, int scope,
                       const std::string& filter, const std::vector<std::string>& attributes,
                       bool paged, const EntryFn& on_entry) {
  std::vector<char*> attrs;
  attrs.reserve(attributes.size() + 1);
  for (const std::string& a : attributes) attrs.push_back(const_cast<char*>(a.c_str()));
  attrs.push_back(nullptr);

  std::string cookie;
  bool first_page = true;
  while (true) {
    std::unique_ptr<LDAPControl, ControlDeleter> page_control;
    if (paged) {
      berval cookie_value{};
      cookie_value.bv_val = cookie.data();
      cookie_value.bv_len = cookie.size();
      LDAPControl* control = nullptr;
      int rc = ldap_create_page_control(ld_, static_cast<ber_int_t>(source_.page_size),
                                        &cookie_value, 1, &control);
      if (rc != LDAP_SUCCESS) return Ldap(rc, what + ": building the paging control", "");
      page_control.reset(control);
    }
    LDAPControl* server_controls[] = {page_control.get(), nullptr};
    // The backstop for a read stuck inside a TLS record; libldap's own
    // wait below normally ends first.
    Armed armed(watchdog_, SteadyClock::now() + source_.timeout + kWatchdogGrace);

    // The time limit the server enforces, in whole seconds (at least 1);
    // ours, below, is exact.
    timeval limit = ToTimeval(source_.timeout);
    if (limit.tv_sec == 0) limit = timeval{1, 0};
    int message_id = 0;
    int rc = ldap_search_ext(ld_, base.c_str(), scope, filter.c_str(), attrs.data(), 0,
                             paged ? server_controls : nullptr, nullptr, &limit, LDAP_NO_LIMIT,
                             &message_id);
    if (rc != LDAP_SUCCESS) return Ldap(rc, what, Diagnostic(ld_));

    std::size_t entries = 0;
    Message done;
    RETURN_IF_ERROR(Collect(what, message_id, on_entry, &entries, &done));
    if (paged && pages_ != nullptr) ++*pages_;

    LDAPControl** controls = nullptr;
    RETURN_IF_ERROR(CheckResult(what, base, done.get(), paged ? &controls : nullptr));
    std::unique_ptr<LDAPControl*, ControlsDeleter> controls_owner(controls);
    if (!paged) return Status::Ok();

    LDAPControl* page = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, controls, nullptr);
    if (page == nullptr) {
      return Error(StatusCode::kInternal,
                   what + ": the server answered a page without the paged-results control");
    }
    ber_int_t estimate = 0;
    berval next{};
    rc = ldap_parse_pageresponse_control(ld_, page, &estimate, &next);
    if (rc != LDAP_SUCCESS) {
      return Ldap(rc, what + ": reading the paged-results control", Diagnostic(ld_));
    }
    std::string next_cookie(next.bv_val != nullptr ? next.bv_val : "", next.bv_len);
    ber_memfree(next.bv_val);
    if (next_cookie.empty()) return Status::Ok();
    // A server that hands back the cookie it was given without making
    // progress would keep us here for ever.
    if (!first_page && entries == 0 && next_cookie == cookie) {
      return Error(StatusCode::kInternal,
                   what + ": the server repeated its paging cookie without returning entries");
    }
    cookie = std::move(next_cookie);
    first_page = false;
  }
}

Status Session::Collect(const std::string& what, int message_id, const EntryFn& on_entry,
                        std::size_t* entries, Message* done) {
  const SteadyClock::time_point deadline = SteadyClock::now() + source_.timeout;
  while (true) {
    auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - SteadyClock::now());
    timeval wait = ToTimeval(left);
    LDAPMessage* raw = nullptr;
    int type = ldap_result(ld_, message_id, LDAP_MSG_ONE, &wait, &raw);
    Message message(raw);
    if (type == 0) {
      ldap_abandon_ext(ld_, message_id, nullptr, nullptr);
      return Error(StatusCode::kDeadlineExceeded,
                   what + ": no answer within " + std::to_string(source_.timeout.count()) + " ms");
    }
    if (type < 0) {
      if (watchdog_.fired()) {
        return Error(
            StatusCode::kDeadlineExceeded,
            what + ": no answer within " + std::to_string(source_.timeout.count()) + " ms");
      }
      return Ldap(ResultCode(ld_), what, Diagnostic(ld_));
    }
    switch (type) {
      case LDAP_RES_SEARCH_ENTRY:
        ++*entries;
        RETURN_IF_ERROR(on_entry(message.get()));
        break;
      case LDAP_RES_SEARCH_REFERENCE: {
        char** referrals = nullptr;
        ldap_parse_reference(ld_, message.get(), &referrals, nullptr, 0);
        std::unique_ptr<char*, ReferralsDeleter> owner(referrals);
        ldap_abandon_ext(ld_, message_id, nullptr, nullptr);
        return Error(StatusCode::kFailedPrecondition,
                     what + ": the server returned a continuation reference" +
                         ReferralText(referrals) +
                         "; referrals are not followed, and the entries behind it would be "
                         "missing from the read");
      }
      case LDAP_RES_SEARCH_RESULT:
        *done = std::move(message);
        return Status::Ok();
      default:
        ldap_abandon_ext(ld_, message_id, nullptr, nullptr);
        return Error(StatusCode::kInternal,
                     what + ": unexpected LDAP message type " + std::to_string(type));
    }
  }
}

void EntryReader::Clear() {
  for (berval* array : arrays_) ber_memfree(array);
  arrays_.clear();
  attributes_.clear();
  if (ber_ != nullptr) ber_free(ber_, 0);
  ber_ = nullptr;
  dn_ = {};
}

Status EntryReader::Read(const Session& session, LDAPMessage* entry) {
  Clear();
  LDAP* ld = session.ld();
  berval dn{};
  int rc = ldap_get_dn_ber(ld, entry, &ber_, &dn);
  if (rc != LDAP_SUCCESS) return session.Ldap(rc, "reading an entry's DN", Diagnostic(ld));
  dn_ = std::string_view(dn.bv_val != nullptr ? dn.bv_val : "", dn.bv_len);
  while (true) {
    berval description{};
    berval* values = nullptr;
    rc = ldap_get_attribute_ber(ld, entry, ber_, &description, &values);
    // (A failed decoding frees what it allocated.)
    if (rc != LDAP_SUCCESS) {
      return session.Ldap(rc, "reading the attributes of '" + std::string(dn_) + "'",
                          Diagnostic(ld));
    }
    if (values != nullptr) arrays_.push_back(values);
    if (description.bv_val == nullptr) return Status::Ok();  // the end
    std::size_t count = 0;
    if (values != nullptr) {
      while (values[count].bv_val != nullptr) ++count;
    }
    attributes_.push_back(
        Attribute{std::string_view(description.bv_val, description.bv_len), values, count});
  }
}

const EntryReader::Attribute* EntryReader::Find(std::string_view description) const {
  for (const Attribute& attribute : attributes_) {
    if (EqualsIgnoreCase(attribute.description, description)) return &attribute;
  }
  return nullptr;
}

std::string_view EntryReader::First(std::string_view description) const {
  const Attribute* attribute = Find(description);
  if (attribute == nullptr || attribute->count == 0) return {};
  return std::string_view(attribute->values[0].bv_val, attribute->values[0].bv_len);
}

Result<std::string> EntryId(const Session& session, const EntryReader& entry,
                            const std::string& attribute, std::string_view dn) {
  std::string_view value = entry.First(attribute);
  if (value.empty() || !IsGuidAttribute(session.source().flavor, attribute)) {
    return std::string(value);
  }
  Result<std::string> guid = FormatGuid(value);
  if (!guid.ok()) {
    return session.Error(StatusCode::kInternal,
                         "entry '" + std::string(dn) + "': " + guid.status().message());
  }
  return guid;
}

Result<std::string> UserId(const Session& session, const EntryReader& entry, std::string_view dn) {
  const LdapConfig& source = session.source();
  std::string id;
  if (!source.users.id.empty()) {
    ASSIGN_OR_RETURN(id, EntryId(session, entry, source.users.id, dn));
  }
  if (id.empty()) {
    ASSIGN_OR_RETURN(id, EntryId(session, entry, FlavorIdAttribute(source.flavor), dn));
  }
  return id;
}

Result<std::string> EntryDn(const Session& session, LDAPMessage* entry) {
  char* dn = ldap_get_dn(session.ld(), entry);
  if (dn == nullptr) {
    return session.Ldap(ResultCode(session.ld()), "reading an entry's DN",
                        Diagnostic(session.ld()));
  }
  LdapString owned(dn);
  return std::string(owned.get());
}

std::vector<std::string> Values(LDAP* ld, LDAPMessage* entry, const std::string& attribute) {
  std::vector<std::string> out;
  if (attribute.empty()) return out;
  std::unique_ptr<berval*, ValuesDeleter> values(ldap_get_values_len(ld, entry, attribute.c_str()));
  if (!values) return out;
  for (berval** v = values.get(); *v != nullptr; ++v) {
    out.emplace_back((*v)->bv_val != nullptr ? (*v)->bv_val : "", (*v)->bv_len);
  }
  return out;
}

std::string First(LDAP* ld, LDAPMessage* entry, const std::string& attribute) {
  std::vector<std::string> values = Values(ld, entry, attribute);
  return values.empty() ? std::string() : std::move(values.front());
}

Result<std::vector<std::string>> Descriptions(const Session& session, LDAPMessage* entry) {
  LDAP* ld = session.ld();
  std::vector<std::string> out;
  // libldap leaves the result code of earlier calls in the handle (a lookup
  // of an absent attribute sets a decoding error), and the end of the list
  // is told from a failure only by that code.
  int success = LDAP_SUCCESS;
  ldap_set_option(ld, LDAP_OPT_RESULT_CODE, &success);
  BerElement* raw_ber = nullptr;
  char* name = ldap_first_attribute(ld, entry, &raw_ber);
  std::unique_ptr<BerElement, BerDeleter> ber(raw_ber);
  while (name != nullptr) {
    LdapString owned(name);
    out.emplace_back(owned.get());
    name = ldap_next_attribute(ld, entry, ber.get());
  }
  int code = ResultCode(ld);
  if (code != LDAP_SUCCESS) {
    return session.Ldap(code, "reading an entry's attributes", Diagnostic(ld));
  }
  return out;
}

Result<std::string> EntryId(const Session& session, LDAPMessage* entry,
                            const std::string& attribute, const std::string& dn) {
  std::string value = First(session.ld(), entry, attribute);
  if (value.empty() || !IsGuidAttribute(session.source().flavor, attribute)) return value;
  Result<std::string> guid = FormatGuid(value);
  if (!guid.ok()) {
    return session.Error(StatusCode::kInternal,
                         "entry '" + dn + "': " + std::string(guid.status().message()));
  }
  return guid;
}

Result<std::string> UserId(const Session& session, LDAPMessage* entry, const std::string& dn) {
  const LdapConfig& source = session.source();
  std::string id;
  if (!source.users.id.empty()) {
    ASSIGN_OR_RETURN(id, EntryId(session, entry, source.users.id, dn));
  }
  if (id.empty()) {
    ASSIGN_OR_RETURN(id, EntryId(session, entry, FlavorIdAttribute(source.flavor), dn));
  }
  return id;
}

}  // namespace idsync::ldap::internal
