#pragma once
// hylora's HTTP front end (cpp-httplib): OpenAI-compatible /v1/completions, /v1/chat/completions, /v1/models;
// SGLang-style /generate, /load_lora_adapter, /unload_lora_adapter; /health; /metrics. HTTP threads parse and
// validate a body, submit one scheduler request per choice and read the results from that request's Channel;
// only the scheduler's engine thread touches the executor.
#include <memory>
#include <string>

#include "server/metrics.h"
#include "server/request_parser.h"

namespace httplib {
class Server;
class ContentReader;
struct Request;
struct Response;
}  // namespace httplib

namespace hylora {
namespace lora {
class AdapterRegistry;
}
namespace scheduler {
class Scheduler;
}
namespace server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 30000;             // 0 = any free port (the listening line says which)
  std::string api_key;          // non-empty: every endpoint needs "Authorization: Bearer <key>"
  std::string lora_root;        // empty: /load_lora_adapter is refused
  size_t max_body_bytes = 8u << 20;
  int body_timeout_s = 10;      // a body not complete this long after its headers is dropped (slow clients)
  int threads = 512;            // connections served at once (each streaming client holds one)
};

class HttpServer {
 public:
  // `ctx.resolve_model` is filled in by the server (it knows the registry).
  HttpServer(scheduler::Scheduler& sched, lora::AdapterRegistry& registry, ModelContext ctx, ServerOptions options);
  ~HttpServer();
  int bind();    // binds host:port; returns the port (throws Error when it cannot)
  void listen();  // serves until stop()
  void stop();

 private:
  void routes();
  // Reads a POST body within --max-body-bytes and --body-timeout (in total); on failure answers 413/408.
  bool read_body(const httplib::Request& req, const httplib::ContentReader& reader, std::string& body,
                 httplib::Response& res);
  void handle_generation(const std::string& body, httplib::Response& res, Endpoint endpoint);
  void handle_models(httplib::Response& res);
  void handle_load(const std::string& body, httplib::Response& res);
  void handle_unload(const std::string& body, httplib::Response& res);
  std::string resolve_model(const std::string& model) const;

  scheduler::Scheduler& sched_;
  lora::AdapterRegistry& registry_;
  ModelContext ctx_;
  ServerOptions opt_;
  ServerMetrics metrics_;
  std::unique_ptr<httplib::Server> svr_;
};

}  // namespace server
}  // namespace hylora
