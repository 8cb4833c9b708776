// The httpd options both listeners share: server.* deadlines and connection
// caps from the configuration, and an observer that turns connection events
// into metrics under the listener's name.
#pragma once

#include <string_view>

#include "idsync/config/config.h"
#include "idsync/daemon/metrics.h"
#include "idsync/httpd/server.h"

namespace idsync::daemon {

// Handlers a listener runs at once, not counting those waiting for the
// store's commit (httpd::Options::running): twice the cores, at least 4.
int SchedulableWorkers();
// Worker threads for a listener whose handlers may wait for the store's
// commit: eight per core, at least 16. A write waits for the commit it
// shares with the writes that arrive with it, so more writes in flight make
// larger groups (bench/README.md, "Writes that share a commit").
int WaitingWorkers();

// `listener`: "scim" or "admin". `metrics` must outlive the server.
httpd::Options ListenerOptions(const config::ServerConfig& server, Metrics& metrics,
                               std::string_view listener);

}  // namespace idsync::daemon
