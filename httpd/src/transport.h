// Non-blocking byte transports for one connection, clear text or TLS
// (OpenSSL), and the TLS context the listeners share. Every call returns at
// once: kAgain says which readiness to wait for. Private to idsync::httpd.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "idsync/base/status.h"

namespace idsync::httpd::internal {

enum class Io {
  kOk,         // *n bytes moved (more than 0), or the handshake is done
  kWantRead,   // wait until the socket is readable, then call again
  kWantWrite,  // wait until the socket is writable, then call again
  kEof,        // the peer closed
  kError,      // the connection is unusable
};

// A server-side TLS context: TLS 1.2 as the floor, forward-secret AEAD
// suites only, no renegotiation, no session tickets across restarts. The
// certificate and key are read once; a new context is loaded to renew them.
class TlsContext {
 public:
  // kUnavailable naming the file when the certificate or key cannot be read
  // or do not match (never the key's content).
  static Result<std::shared_ptr<TlsContext>> Load(const std::string& cert_file,
                                                  const std::string& key_file);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  void* native() const { return ctx_; }  // SSL_CTX*

 private:
  explicit TlsContext(void* ctx) : ctx_(ctx) {}
  void* ctx_;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Completes the TLS handshake (clear text: kOk at once).
  virtual Io Handshake() = 0;
  virtual Io Read(char* buf, std::size_t size, std::size_t* n) = 0;
  virtual Io Write(const char* buf, std::size_t size, std::size_t* n) = 0;
  // Stops sending: a TLS close_notify if possible, then the socket's write
  // side. Reading may go on.
  virtual void ShutdownWrite() = 0;
};

// `fd` stays owned by the caller.
std::unique_ptr<Transport> PlainTransport(int fd);
std::unique_ptr<Transport> TlsTransport(int fd, const std::shared_ptr<TlsContext>& context);

}  // namespace idsync::httpd::internal
