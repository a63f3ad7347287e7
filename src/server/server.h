// `chassis serve`: the OpenAI-compatible HTTP server (cpp-httplib) in front of the model registry.
// Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/{id}], GET /health,
// GET /metrics. Every /v1 route needs the API key when one is set; /health never does.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/metrics.h"
#include "server/model_registry.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace chassis::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                        // 0: any free port (see port())
  std::vector<std::string> api_keys;      // empty: no auth
  std::vector<std::string> cors_origins;  // empty: CORS off; "*": any origin
  size_t max_body_bytes = 16u << 20;
  int http_threads = 128;                 // connections served at once (each stream holds one)
  bool log_requests = true;
};

class Server {
 public:
  Server(ModelRegistry& registry, ServerOptions options);
  ~Server();

  // Binds the listening socket; throws Error when it cannot.
  void bind();
  int port() const { return port_; }
  // Serves until shutdown(); call after bind().
  void run();
  // Stops taking requests (503), lets running ones finish for up to `grace`, cancels the rest,
  // then makes run() return. Safe from any thread, once.
  void shutdown(std::chrono::milliseconds grace);

 private:
  void routes();
  void chat_completions(const httplib::Request& req, httplib::Response& res);
  void completions(const httplib::Request& req, httplib::Response& res);
  void models(const httplib::Request& req, httplib::Response& res);
  void model(const httplib::Request& req, httplib::Response& res);
  bool authorized(const httplib::Request& req) const;

  ModelRegistry& registry_;
  ServerOptions options_;
  Metrics metrics_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_request_{1};
  std::thread reaper_;
};

}  // namespace chassis::server
