// The httpd options both listeners share: server.* deadlines and connection
// caps from the configuration, and an observer that turns connection events
// into metrics under the listener's name.
#pragma once

#include <string_view>

#include "idsync/config/config.h"
#include "idsync/daemon/metrics.h"
#include "idsync/httpd/server.h"

namespace idsync::daemon {

// Worker threads for a listener whose handlers compute or wait briefly on
// the store: twice the cores, at least 4.
int SchedulableWorkers();

// `listener`: "scim" or "admin". `metrics` must outlive the server.
httpd::Options ListenerOptions(const config::ServerConfig& server, Metrics& metrics,
                               std::string_view listener);

}  // namespace idsync::daemon
