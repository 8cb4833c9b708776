// Runs prometheus_client's text parser (python3-prometheus-client) on a
// metrics page and returns what it read, so tests check the page the way a
// Prometheus scraper would read it rather than by string matching alone.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <unistd.h>

namespace idsync::daemon::testing {

// {"ok": true, "families": {name: {"type": ..., "samples": [[name, labels, value], ...]}}}
// or {"ok": false, "error": "..."} when the parser refused the page.
inline nlohmann::json ParsePrometheusText(const std::string& page) {
  char dir_template[] = "/tmp/idsync-prom-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (dir == nullptr) return {{"ok", false}, {"error", "mkdtemp failed"}};
  const std::string page_path = std::string(dir) + "/page.txt";
  const std::string script_path = std::string(dir) + "/parse.py";
  std::ofstream(page_path) << page;
  std::ofstream(script_path) << R"(import json, sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    print(json.dumps({"ok": False, "error": "python3-prometheus-client missing: %s" % e}))
    sys.exit(0)
text = open(sys.argv[1], encoding="utf-8").read()
try:
    fams = {}
    for f in text_string_to_metric_families(text):
        fams[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
    print(json.dumps({"ok": True, "families": fams}))
except Exception as e:
    print(json.dumps({"ok": False, "error": "%s: %s" % (type(e).__name__, e)}))
)";
  const std::string cmd =
      std::string(IDSYNC_PYTHON3) + " " + script_path + " " + page_path + " 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  std::remove(page_path.c_str());
  std::remove(script_path.c_str());
  rmdir(dir);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return {{"ok", false}, {"error", "python3 said: " + out}};
  return j;
}

// The value of the sample `name` with exactly `labels` in parsed families, or
// NaN when absent.
inline double SampleValue(const nlohmann::json& parsed, const std::string& name,
                          const nlohmann::json& labels) {
  for (const auto& [fam, body] : parsed["families"].items()) {
    for (const auto& s : body["samples"]) {
      if (s[0] == name && s[1] == labels) return s[2].get<double>();
    }
  }
  return std::nan("");
}

}  // namespace idsync::daemon::testing
