#include "listeners.h"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>

namespace idsync::daemon {
namespace {

class MetricsObserver : public httpd::Observer {
 public:
  MetricsObserver(Metrics& metrics, std::string_view listener)
      : metrics_(metrics), listener_(listener) {}
  void ConnectionOpened() override { metrics_.HttpConnectionOpened(listener_); }
  void ConnectionClosed() override { metrics_.HttpConnectionClosed(listener_); }
  void ConnectionRefused(std::string_view reason) override {
    metrics_.HttpConnectionRefused(listener_, reason);
  }
  void DeadlinePassed(std::string_view deadline) override {
    metrics_.HttpDeadline(listener_, deadline);
  }
  void RequestRefused(std::string_view method, int status) override {
    // Only the SCIM listener's requests are counted by method and status.
    if (listener_ == "scim") metrics_.ScimRequest(method, status, 0.0);
  }

 private:
  Metrics& metrics_;
  std::string listener_;
};

}  // namespace

int SchedulableWorkers() {
  const unsigned cores = std::thread::hardware_concurrency();
  return std::max(4, 3 * static_cast<int>(cores));
}

int WaitingWorkers() {
  const unsigned cores = std::thread::hardware_concurrency();
  return std::max(16, 8 * static_cast<int>(cores));
}

httpd::Options ListenerOptions(const config::ServerConfig& server, Metrics& metrics,
                               std::string_view listener) {
  httpd::Options o;
  o.header_timeout = server.header_timeout;
  o.body_timeout = server.body_timeout;
  o.tls_handshake_timeout = server.tls_handshake_timeout;
  o.keep_alive_timeout = server.keep_alive_timeout;
  o.write_timeout = server.write_timeout;
  o.max_connections = server.max_connections;
  o.max_connections_per_ip = server.max_connections_per_ip;
  o.observer = std::make_shared<MetricsObserver>(metrics, listener);
  return o;
}

}  // namespace idsync::daemon
