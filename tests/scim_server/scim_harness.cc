#include "scim_harness.h"

#include <filesystem>
#include <sstream>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <stdlib.h>

namespace idsync::scim::testing {

Result<std::unique_ptr<ScimHarness>> ScimHarness::Start(HarnessOptions options) {
  std::unique_ptr<ScimHarness> h(new ScimHarness());
  h->options_ = std::move(options);
  if (h->options_.store_dir.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "idsync-scim-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return InternalError("mkdtemp failed");
    h->temp_dir_ = pattern;
    h->options_.store_dir = pattern;
  }
  Result<std::unique_ptr<store::Store>> st =
      store::Store::Open("sqlite://" + h->options_.store_dir + "/state.db");
  if (!st.ok()) return st.status();
  h->store_ = std::move(st).value();
  RETURN_IF_ERROR(h->StartServing());
  return h;
}

ScimHarness::~ScimHarness() {
  StopServing();
  store_.reset();
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
  }
}

Status ScimHarness::StartServing() {
  persistence_ = std::make_unique<StoreResourcePersistence>(*store_);
  ServiceOptions service_options;
  EndpointOptions endpoint_options;
  endpoint_options.scim_path = options_.scim_path;
  for (const auto& [source, token] : options_.sources) {
    service_options.sources.push_back(source);
    endpoint_options.sources.push_back({source, {HashToken(token)}});
  }
  Result<std::unique_ptr<ScimService>> service =
      ScimService::Create(service_options, *persistence_, [this](const ScimChange& change) {
        std::lock_guard lock(changes_mu_);
        changes_.push_back(change);
      });
  if (!service.ok()) return service.status();
  service_ = std::move(service).value();
  endpoint_ = std::make_unique<ScimEndpoint>(endpoint_options, *service_);
  httpd::Options http;
  http.listen = {options_.listen};
  http.max_body = options_.max_body;
  http.threads = options_.threads;
  if (options_.running > 0) http.running = options_.running;
  http.max_queued = options_.max_queued;
  http.render_error = ScimErrorResponse;
  // As idsyncd: the token is checked on the head, before any body is read.
  http.screen = [this](httpd::Request* head) { return endpoint_->Screen(head); };
  Result<std::unique_ptr<httpd::Server>> server =
      httpd::Server::Start(http, [this](const httpd::Request& r) { return endpoint_->Handle(r); });
  if (!server.ok()) return server.status();
  server_ = std::move(server).value();
  port_ = server_->ports().at(0);
  return Status::Ok();
}

void ScimHarness::StopServing() {
  if (server_) server_->Stop(std::chrono::seconds(5));
  server_.reset();
  endpoint_.reset();
  service_.reset();
  persistence_.reset();
}

Status ScimHarness::Restart() {
  StopServing();
  return StartServing();
}

std::vector<ScimChange> ScimHarness::Changes() const {
  std::lock_guard lock(changes_mu_);
  return changes_;
}

HttpReply ScimHarness::Call(const std::string& method, const std::string& target,
                            const std::string& token, const std::string& body,
                            const std::string& content_type) const {
  HttpReply reply;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port_));
    session.setTimeout(Poco::Timespan(30, 0));
    Poco::Net::HTTPRequest req(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
    req.setHost("127.0.0.1", static_cast<Poco::UInt16>(port_));
    if (!token.empty()) req.set("Authorization", "Bearer " + token);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      if (!content_type.empty()) req.setContentType(content_type);
      req.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    std::ostream& out = session.sendRequest(req);
    out << body;
    Poco::Net::HTTPResponse resp;
    std::istream& in = session.receiveResponse(resp);
    std::ostringstream text;
    Poco::StreamCopier::copyStream(in, text);
    reply.status = resp.getStatus();
    reply.body = text.str();
    for (const auto& [name, value] : resp) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[lower] = value;
    }
  } catch (const Poco::Exception& e) {
    reply.status = 0;
    reply.body = e.displayText();
  }
  return reply;
}

std::string UrlEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

}  // namespace idsync::scim::testing
