#include "server/http_server.h"

#include <httplib.h>

#include <cstdlib>
#include <filesystem>

#include "lora/adapter_registry.h"
#include "scheduler/scheduler.h"
#include "server/api_error.h"
#include "server/handler_util.h"
#include "server/json_body.h"

namespace hylora::server {

namespace {
using json = nlohmann::json;

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char d = a.size() != b.size();
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return d == 0;
}

// `path` (absolute, or relative to `root`) resolved with every symlink followed; must lie under `root`.
std::string resolve_under_root(const std::string& root, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path croot = fs::canonical(root, ec);
  if (ec) throw ApiError(500, "server_error", "--lora-root does not exist");
  fs::path p(path);
  if (p.is_relative()) p = croot / p;
  const fs::path cp = fs::canonical(p, ec);
  if (ec) throw bad_request("adapter directory '" + path + "' does not exist", "lora_path");
  auto [r, c] = std::mismatch(croot.begin(), croot.end(), cp.begin(), cp.end());
  if (r != croot.end())
    throw ApiError(403, "permission_error", "adapter directory '" + path + "' is outside --lora-root", "lora_path");
  if (!fs::is_directory(cp)) throw bad_request("'" + path + "' is not a directory", "lora_path");
  return cp.string();
}
}  // namespace

HttpServer::HttpServer(scheduler::Scheduler& sched, lora::AdapterRegistry& registry, ModelContext ctx,
                       ServerOptions options)
    : sched_(sched), registry_(registry), ctx_(std::move(ctx)), opt_(std::move(options)),
      svr_(std::make_unique<httplib::Server>()) {
  ctx_.resolve_model = [this](const std::string& m) { return resolve_model(m); };
  const int threads = opt_.threads;
  svr_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr_->set_payload_max_length(opt_.max_body_bytes);
  svr_->set_read_timeout(opt_.body_timeout_s, 0);
  svr_->set_write_timeout(opt_.body_timeout_s, 0);
  // One request per connection: httplib keeps reading a keep-alive connection after a 408/413 answer, so a client
  // that trickles the rest of a refused body would hold its thread; closing after every answer frees it.
  svr_->set_keep_alive_max_count(1);
  routes();
}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::resolve_model(const std::string& model) const {
  if (model.empty() || model == ctx_.base_name) return "";
  std::string name = model;
  if (model.rfind(ctx_.base_name + ":", 0) == 0) name = model.substr(ctx_.base_name.size() + 1);
  if (!registry_.contains(name))
    throw ApiError(404, "not_found_error", "model '" + model + "' does not exist (see GET /v1/models)", "model");
  return name;
}

void HttpServer::routes() {
  auto& s = *svr_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opt_.api_key.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string h = req.get_header_value("Authorization");
    if (h.rfind("Bearer ", 0) == 0 && constant_time_equal(h.substr(7), opt_.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, 401, "authentication_error", "missing or wrong API key (Authorization: Bearer ...)");
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 404   ? "no such endpoint: " + req.method + " " + req.path
                      : res.status == 413 ? "request body is larger than the server's limit (--max-body-bytes)"
                      : res.status == 408 ? "request body did not arrive in time"
                                          : "HTTP error " + std::to_string(res.status);
    send_error(res, res.status, res.status >= 500 ? "server_error" : "invalid_request_error", msg);
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.count_http(req.path, res.status);
  });
  s.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(sched_.stats(), registry_), "text/plain; version=0.0.4");
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { handle_models(res); });
  // POST bodies are read here, chunk by chunk, so that the whole body has a deadline: a client that trickles its
  // body (each byte just inside the per-read timeout) is dropped as surely as one that stops.
  auto post = [this, &s](const char* path, std::function<void(const std::string&, httplib::Response&)> handler) {
    s.Post(path, [this, handler](const httplib::Request& req, httplib::Response& res,
                                 const httplib::ContentReader& reader) {
      std::string body;
      if (read_body(req, reader, body, res)) handler(body, res);
    });
  };
  post("/v1/completions", [this](const std::string& b, httplib::Response& res) {
    handle_generation(b, res, Endpoint::kCompletions);
  });
  post("/v1/chat/completions", [this](const std::string& b, httplib::Response& res) {
    handle_generation(b, res, Endpoint::kChat);
  });
  post("/generate", [this](const std::string& b, httplib::Response& res) {
    handle_generation(b, res, Endpoint::kGenerate);
  });
  post("/load_lora_adapter", [this](const std::string& b, httplib::Response& res) { handle_load(b, res); });
  post("/unload_lora_adapter", [this](const std::string& b, httplib::Response& res) { handle_unload(b, res); });
}

void HttpServer::handle_models(httplib::Response& res) {
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
  json data = json::array();
  data.push_back({{"id", ctx_.base_name}, {"object", "model"}, {"created", created}, {"owned_by", "hylora"},
                  {"root", ctx_.base_name}, {"parent", nullptr}, {"max_model_len", ctx_.limits.max_prompt_tokens}});
  for (auto& a : registry_.list())
    data.push_back({{"id", a.name}, {"object", "model"}, {"created", created}, {"owned_by", "hylora"},
                    {"root", a.name}, {"parent", ctx_.base_name}, {"pinned", a.pinned}});
  res.set_content(json{{"object", "list"}, {"data", data}}.dump(), "application/json");
}

bool HttpServer::read_body(const httplib::Request& req, const httplib::ContentReader& reader, std::string& body,
                           httplib::Response& res) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opt_.body_timeout_s);
  bool too_big = false, too_late = false;
  const bool ok = reader([&](const char* data, size_t n) {
    if (body.size() + n > opt_.max_body_bytes) return !(too_big = true);
    if (std::chrono::steady_clock::now() > deadline) return !(too_late = true);
    body.append(data, n);
    return true;
  });
  if (ok && !too_big && !too_late) return true;
  // httplib refuses a body over its payload limit itself (reader() returns false): say why.
  too_big = too_big || body.size() >= opt_.max_body_bytes ||
            std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > opt_.max_body_bytes;
  res.set_header("Connection", "close");
  if (too_big)
    send_error(res, 413, "invalid_request_error", "request body is larger than the server's limit (--max-body-bytes)");
  else
    send_error(res, 408, "invalid_request_error", "request body did not arrive within --body-timeout");
  return false;
}

void HttpServer::handle_load(const std::string& req_body, httplib::Response& res) {
  guarded(res, [&] {
    if (opt_.lora_root.empty())
      throw ApiError(403, "permission_error",
                     "loading adapters over HTTP is disabled: start the server with --lora-root DIR");
    auto body = parse_json_body(req_body, opt_.max_body_bytes);
    if (!body.contains("lora_name") || !body["lora_name"].is_string())
      throw bad_request("'lora_name' must be a string", "lora_name");
    if (!body.contains("lora_path") || !body["lora_path"].is_string())
      throw bad_request("'lora_path' must be a string", "lora_path");
    bool pinned = false;
    if (body.contains("pinned") && !body["pinned"].is_null()) {
      if (!body["pinned"].is_boolean()) throw bad_request("'pinned' must be true or false", "pinned");
      pinned = body["pinned"].get<bool>();
    }
    const std::string name = body["lora_name"].get<std::string>();
    if (name == ctx_.base_name) throw bad_request("an adapter cannot take the base model's name", "lora_name");
    const std::string dir = resolve_under_root(opt_.lora_root, body["lora_path"].get<std::string>());
    registry_.load(name, dir, pinned);
    res.set_content(json{{"success", true}, {"message", "loaded adapter '" + name + "'"}}.dump(), "application/json");
  });
}

void HttpServer::handle_unload(const std::string& req_body, httplib::Response& res) {
  guarded(res, [&] {
    auto body = parse_json_body(req_body, opt_.max_body_bytes);
    if (!body.contains("lora_name") || !body["lora_name"].is_string())
      throw bad_request("'lora_name' must be a string", "lora_name");
    const std::string name = body["lora_name"].get<std::string>();
    registry_.unload(name);
    res.set_content(json{{"success", true}, {"message", "unloaded adapter '" + name + "'"}}.dump(), "application/json");
  });
}

int HttpServer::bind() {
  if (opt_.port == 0) {
    const int port = svr_->bind_to_any_port(opt_.host);
    HYLORA_CHECK(port > 0, "cannot bind ", opt_.host, " to any port");
    opt_.port = port;
  } else {
    HYLORA_CHECK(svr_->bind_to_port(opt_.host, opt_.port), "cannot listen on ", opt_.host, ":", opt_.port,
                 " (in use, or not an address of this machine)");
  }
  return opt_.port;
}

void HttpServer::listen() { svr_->listen_after_bind(); }

void HttpServer::stop() {
  if (svr_ && svr_->is_running()) svr_->stop();
}

}  // namespace hylora::server
