#include "server/server.h"

#include <httplib.h>

#include <ctime>

#include "core/error.h"
#include "core/log.h"
#include "server/generation.h"

namespace chassis::server {

namespace {

int64_t unix_now() { return int64_t(std::time(nullptr)); }

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const HttpError& e) {
  if (e.retry_after_s > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s));
  send_json(res, e.status, error_body(e));
}

// Compares in time that depends only on the length of the expected key.
bool constant_time_equal(const std::string& given, const std::string& expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i)
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  return diff == 0;
}

std::string sse(const Json& j) { return "data: " + dump(j) + "\n\n"; }

void log_request(const Job& job, const std::string& outcome) {
  for (size_t i = 0; i < job.results.size(); ++i) {
    const SequenceStats& s = job.results[i].stats;
    const double tps = s.decode_ms > 0 && s.completion_tokens > 1 ? (s.completion_tokens - 1) * 1000.0 / s.decode_ms : 0;
    char line[512];
    std::snprintf(line, sizeof line,
                  "%s choice=%zu model=%s prompt=%lld cached=%lld generated=%lld ttft_ms=%.1f tok_s=%.1f finish=%s%s",
                  job.id.c_str(), i, job.lm->id.c_str(), (long long)s.prompt_tokens, (long long)s.cached_tokens,
                  (long long)s.completion_tokens, s.ttft_ms, tps, job.results[i].finish_reason.c_str(),
                  outcome.empty() ? "" : (" " + outcome).c_str());
    log(LogLevel::Info, line);
  }
}

}  // namespace

Server::Server(ModelRegistry& registry, ServerOptions options)
    : registry_(registry), options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  const int threads = std::max(4, options_.http_threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(30, 0);
  routes();
}

Server::~Server() {
  stopping_ = true;
  if (reaper_.joinable()) reaper_.join();
}

bool Server::authorized(const httplib::Request& req) const {
  if (options_.api_keys.empty()) return true;
  const std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (auth.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string key = auth.substr(prefix.size());
  bool ok = false;
  for (const auto& k : options_.api_keys) ok |= constant_time_equal(key, k);  // no early exit
  return ok;
}

void Server::routes() {
  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && !options_.cors_origins.empty()) {
      bool allowed = false;
      for (const auto& o : options_.cors_origins) allowed |= o == "*" || o == origin;
      if (allowed) {
        res.set_header("Access-Control-Allow-Origin", origin);
        res.set_header("Vary", "Origin");
        if (req.method == "OPTIONS") {
          res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
          res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
          res.set_header("Access-Control-Max-Age", "600");
          res.status = 204;
          return httplib::Server::HandlerResponse::Handled;
        }
      }
    }
    if (req.path.rfind("/v1/", 0) == 0 && !authorized(req)) {
      send_error(res, HttpError(401, "Incorrect or missing API key: send 'Authorization: Bearer KEY'", "",
                                "invalid_api_key"));
      metrics_.count_request(req.path, 401);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (draining_ && req.path != "/health" && req.path != "/metrics") {
      HttpError e(503, "the server is shutting down", "", "shutting_down");
      e.retry_after_s = 5;
      send_error(res, e);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib produces itself (413, 400 on a malformed request line, 404 on no route) get
  // OpenAI's error shape too.
  http_->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg;
    if (res.status == 404) msg = "no route " + req.method + " " + req.path;
    else if (res.status == 413) msg = "the request body is larger than " + std::to_string(options_.max_body_bytes) + " bytes";
    else msg = "the request was rejected (HTTP " + std::to_string(res.status) + ")";
    send_error(res, HttpError(res.status, msg));
    metrics_.count_request(res.status == 404 ? "other" : req.path, res.status);
  });
  http_->set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log_error("internal error on " + req.path + ": " + what);
    send_error(res, HttpError(500, "internal error: " + what));
    metrics_.count_request(req.path, 500);
  });

  auto guarded = [this](const char* route, void (Server::*fn)(const httplib::Request&, httplib::Response&)) {
    return [this, route, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        (this->*fn)(req, res);
      } catch (const HttpError& e) {
        send_error(res, e);
      } catch (const std::bad_alloc&) {
        send_error(res, HttpError(500, "out of memory"));
      }
      // A streamed response gets its status when httplib writes it, after this returns.
      metrics_.count_request(route, res.status < 0 ? 200 : res.status);
    };
  };
  http_->Post("/v1/chat/completions", guarded("/v1/chat/completions", &Server::chat_completions));
  http_->Post("/v1/completions", guarded("/v1/completions", &Server::completions));
  http_->Get("/v1/models", guarded("/v1/models", &Server::models));
  http_->Get(R"(/v1/models/(.+))", guarded("/v1/models/{id}", &Server::model));
  http_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (draining_) send_json(res, 503, {{"status", "shutting_down"}});
    else send_json(res, 200, {{"status", "ok"}});
  });
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(registry_), "text/plain; version=0.0.4");
  });
}

void Server::models(const httplib::Request&, httplib::Response& res) {
  Json data = Json::array();
  for (const auto& id : registry_.ids())
    data.push_back({{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "chassis"}});
  send_json(res, 200, {{"object", "list"}, {"data", data}});
}

void Server::model(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  if (!registry_.has(id))
    throw HttpError(404, "The model '" + id + "' does not exist", "model", "model_not_found");
  send_json(res, 200, {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "chassis"}});
}

namespace {

// Streams a job as server-sent events, or collects it into one response.
void run_job(std::shared_ptr<Job> job, const httplib::Request& req, httplib::Response& res, Metrics& metrics,
             bool log_requests) {
  auto conn = std::make_shared<ClientConnection>(req.remote_addr, req.remote_port, req.local_port);
  auto finish_log = [job, &metrics, log_requests](const std::string& outcome) {
    for (const auto& r : job->results) metrics.count_sequence(job->lm->id, r.stats);
    if (outcome == "disconnected") metrics.count_disconnect();
    if (log_requests) log_request(*job, outcome);
  };
  if (!job->gen.stream) {
    std::string failure;
    const bool ok = job->pump(*conn, [&](size_t, const SequenceEvent& ev) {
      if (ev.kind == SequenceEvent::Kind::Finished && (ev.finish_reason == "error" || ev.finish_reason == "cancelled"))
        failure = ev.finish_reason == "error" ? ev.error : "the server cancelled the request (shutting down)";
      return true;
    });
    if (!ok) {
      finish_log("disconnected");
      res.status = 499;  // nobody reads it
      return;
    }
    finish_log(failure.empty() ? "" : "failed");
    if (!failure.empty()) throw HttpError(failure.rfind("the server", 0) == 0 ? 503 : 500, failure);
    send_json(res, 200, job->response());
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream", [job, conn, finish_log](size_t, httplib::DataSink& sink) {
        std::vector<bool> started(job->seqs.size(), false);
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        std::string failure;
        const bool ok = job->pump(*conn, [&](size_t i, const SequenceEvent& ev) {
          if (ev.kind == SequenceEvent::Kind::Finished && (ev.finish_reason == "error" || ev.finish_reason == "cancelled")) {
            failure = ev.finish_reason == "error" ? ev.error : "the server cancelled the request (shutting down)";
            return true;
          }
          // A token whose text is still held back (a split character, a possible stop string) sends
          // nothing unless logprobs are asked for.
          if (ev.kind == SequenceEvent::Kind::Token && ev.token.text.empty() && !job->gen.logprobs && started[i])
            return true;
          const bool first = !started[i];
          started[i] = true;
          if (first && job->chat && ev.kind == SequenceEvent::Kind::Token) {
            // OpenAI's first chunk of a choice carries the role alone.
            SequenceEvent role;
            role.token.text = "";
            role.token.id = -1;
            if (!write(sse(job->chunk(i, role, true)))) return false;
            return write(sse(job->chunk(i, ev, false)));
          }
          return write(sse(job->chunk(i, ev, first)));
        });
        if (!ok) {
          finish_log("disconnected");
          return false;
        }
        finish_log(failure.empty() ? "" : "failed");
        if (!failure.empty()) write(sse(error_body(HttpError(500, failure))));
        else if (job->gen.include_usage) write(sse(job->usage_chunk()));
        write("data: [DONE]\n\n");
        sink.done();
        return true;
      });
}

}  // namespace

void Server::chat_completions(const httplib::Request& req, httplib::Response& res) {
  const Json body = parse_body(req.body);
  ChatParams p = parse_chat_request(body);
  auto job = std::make_shared<Job>();
  job->lm = registry_.acquire(p.gen.model);
  if (!job->lm->chat_template)
    throw HttpError(400, "the model '" + p.gen.model +
                             "' has no chat template; start the server with --chat-template FILE, or send a raw "
                             "prompt to /v1/completions",
                    "model", "no_chat_template");
  std::string text;
  try {
    text = job->lm->chat_template->apply(p.chat);
  } catch (const std::exception& e) {
    throw HttpError(400, std::string("the chat template could not render these messages: ") + e.what(), "messages",
                    "template_error");
  }
  // The template writes BOS and the turn markers itself, as transformers' apply_chat_template does.
  const std::vector<int32_t> prompt = job->lm->model->tokenizer().tokenize(text, false, true);
  job->chat = true;
  job->id = new_request_id("chatcmpl-");
  job->created = unix_now();
  job->gen = p.gen;
  job->submit({prompt});
  run_job(job, req, res, metrics_, options_.log_requests);
}

void Server::completions(const httplib::Request& req, httplib::Response& res) {
  const Json body = parse_body(req.body);
  CompletionParams p = parse_completion_request(body);
  auto job = std::make_shared<Job>();
  job->lm = registry_.acquire(p.gen.model);
  const TextTokenizer& tok = job->lm->model->tokenizer();
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> texts;
  for (const auto& t : p.text_prompts) {
    prompts.push_back(tok.tokenize(t, true, true));
    texts.push_back(t);
  }
  for (const auto& ids : p.token_prompts) {
    std::string t;
    for (int32_t id : ids) {
      if (id >= tok.n_tokens()) throw HttpError(400, "token id " + std::to_string(id) + " is outside the vocabulary", "prompt");
      t += tok.token_to_piece(id);
    }
    prompts.push_back(ids);
    texts.push_back(t);
  }
  job->chat = false;
  job->id = new_request_id("cmpl-");
  job->created = unix_now();
  job->gen = p.gen;
  job->submit(prompts);
  if (p.echo)
    for (size_t i = 0; i < job->seqs.size(); ++i) job->echo.push_back(texts[job->prompt_of[i]]);
  run_job(job, req, res, metrics_, options_.log_requests);
}

void Server::bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ <= 0) throw Error("cannot bind " + options_.host + " on any port");
  } else {
    if (!http_->bind_to_port(options_.host, options_.port))
      throw Error("cannot bind " + options_.host + ":" + std::to_string(options_.port) + " (in use, or not allowed)");
    port_ = options_.port;
  }
}

void Server::run() {
  reaper_ = std::thread([this] {
    while (!stopping_) {
      registry_.unload_idle();
      for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  http_->listen_after_bind();
  stopping_ = true;
  reaper_.join();
}

void Server::shutdown(std::chrono::milliseconds grace) {
  if (draining_.exchange(true)) return;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!registry_.idle() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  registry_.cancel_all();
  // Let handlers write their last bytes before the listener goes away.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  http_->stop();
}

}  // namespace chassis::server
