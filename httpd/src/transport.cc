#include "transport.h"

#include <cerrno>
#include <mutex>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace idsync::httpd::internal {
namespace {

// TLS 1.2 suites with ephemeral (EC)DH key exchange and an AEAD cipher;
// TLS 1.3's suites are all of that kind.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string LastSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

class Plain : public Transport {
 public:
  explicit Plain(int fd) : fd_(fd) {}
  Io Handshake() override { return Io::kOk; }
  Io Read(char* buf, std::size_t size, std::size_t* n) override {
    while (true) {
      const ssize_t r = ::recv(fd_, buf, size, 0);
      if (r > 0) {
        *n = static_cast<std::size_t>(r);
        return Io::kOk;
      }
      if (r == 0) return Io::kEof;
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Io::kWantRead : Io::kError;
    }
  }
  Io Write(const char* buf, std::size_t size, std::size_t* n) override {
    while (true) {
      const ssize_t r = ::send(fd_, buf, size, MSG_NOSIGNAL);
      if (r >= 0) {
        *n = static_cast<std::size_t>(r);
        return r > 0 || size == 0 ? Io::kOk : Io::kWantWrite;
      }
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Io::kWantWrite : Io::kError;
    }
  }
  void ShutdownWrite() override { ::shutdown(fd_, SHUT_WR); }

 private:
  int fd_;
};

class Tls : public Transport {
 public:
  Tls(int fd, std::shared_ptr<TlsContext> context) : fd_(fd), context_(std::move(context)) {
    ssl_ = SSL_new(static_cast<SSL_CTX*>(context_->native()));
    if (ssl_ != nullptr) {
      SSL_set_fd(ssl_, fd_);
      SSL_set_accept_state(ssl_);
    }
  }
  ~Tls() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }

  Io Handshake() override {
    if (ssl_ == nullptr) return Io::kError;
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) return Io::kOk;
    return Map(r);
  }
  Io Read(char* buf, std::size_t size, std::size_t* n) override {
    ERR_clear_error();
    const int r = SSL_read_ex(ssl_, buf, size, n);
    if (r == 1) return Io::kOk;
    return Map(r);
  }
  Io Write(const char* buf, std::size_t size, std::size_t* n) override {
    ERR_clear_error();
    const int r = SSL_write_ex(ssl_, buf, size, n);
    if (r == 1) return Io::kOk;
    return Map(r);
  }
  void ShutdownWrite() override {
    if (ssl_ != nullptr && SSL_is_init_finished(ssl_) == 1) {
      ERR_clear_error();
      SSL_shutdown(ssl_);
      ERR_clear_error();
    }
    ::shutdown(fd_, SHUT_WR);
  }

 private:
  Io Map(int r) {
    const int e = SSL_get_error(ssl_, r);
    ERR_clear_error();
    switch (e) {
      case SSL_ERROR_WANT_READ:
        return Io::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Io::kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
        return Io::kEof;
      case SSL_ERROR_SYSCALL:
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::kWantRead;
        return Io::kEof;
      default:
        return Io::kError;
    }
  }

  int fd_;
  std::shared_ptr<TlsContext> context_;  // outlives ssl_
  SSL* ssl_ = nullptr;
};

}  // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::Load(const std::string& cert_file,
                                                     const std::string& key_file) {
  static std::once_flag init;
  std::call_once(init, [] { OPENSSL_init_ssl(0, nullptr); });
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return UnavailableError("cannot create a TLS context: " + LastSslError());
  std::shared_ptr<TlsContext> out(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return UnavailableError("cannot set the TLS cipher list: " + LastSslError());
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return UnavailableError("cannot load TLS certificate \"" + cert_file + "\": " + LastSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return UnavailableError("cannot load TLS key \"" + key_file + "\": " + LastSslError());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return UnavailableError("TLS key \"" + key_file + "\" does not match certificate \"" +
                            cert_file + "\"");
  }
  return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(static_cast<SSL_CTX*>(ctx_)); }

std::unique_ptr<Transport> PlainTransport(int fd) { return std::make_unique<Plain>(fd); }

std::unique_ptr<Transport> TlsTransport(int fd, const std::shared_ptr<TlsContext>& context) {
  return std::make_unique<Tls>(fd, context);
}

}  // namespace idsync::httpd::internal
