// The models a server offers, by name: loaded on first use, each with its own batch engine and chat
// template, unloaded after --keep-alive idle or, least recently used first, when loading another
// would pass --memory-budget. Loading one model holds no lock that requests to other models need.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/batch_engine.h"
#include "engine/model.h"
#include "tokenizer/chat_template.h"

namespace chassis::server {

struct ModelSpec {
  std::string id;    // the name clients use
  std::string path;  // GGUF file or Hugging Face folder
};

struct RegistryOptions {
  BatchEngineOptions engine;
  uint64_t memory_budget = 0;                  // bytes; 0: no limit
  std::chrono::seconds keep_alive{0};          // 0: keep loaded
  std::string chat_template_file;              // overrides every model's own template when set
  std::optional<QuantPreset> quant;            // load-time quantization of F32/F16/BF16 weights
  bool pack = true;                            // pack the weights into huge-page memory at load (Model::LoadOptions::pack)
};

// A loaded model in use; held by requests through shared_ptr so it outlives an unload.
struct LoadedModel {
  std::string id;
  std::unique_ptr<Model> model;
  std::optional<ChatTemplate> chat_template;
  std::unique_ptr<BatchEngine> engine;
  uint64_t bytes = 0;  // what it was charged against the budget
};

struct ModelStatus {
  std::string id, path;
  bool loaded = false;
  uint64_t bytes = 0;
  BatchEngineStats engine;
};

class ModelRegistry {
 public:
  ModelRegistry(std::vector<ModelSpec> specs, RegistryOptions options);

  bool has(const std::string& id) const;
  std::vector<std::string> ids() const;
  // The loaded model, loading it first if needed. Throws HttpError: 404 unknown, 400 larger than the
  // budget, 503 when the budget is held by models that are busy, 500 when loading fails.
  std::shared_ptr<LoadedModel> acquire(const std::string& id);
  // Unloads models idle for longer than keep-alive; called periodically.
  void unload_idle();
  std::vector<ModelStatus> status() const;
  // Stops every engine's work (shutdown after the grace period).
  void cancel_all();
  // True when no engine has work.
  bool idle() const;

 private:
  struct Entry {
    ModelSpec spec;
    std::shared_ptr<LoadedModel> loaded;
    std::chrono::steady_clock::time_point last_used;
    std::mutex load_mutex;  // serializes loading this one model only
  };
  bool busy(const Entry& e) const;

  RegistryOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  std::vector<std::string> order_;  // as named on the command line
};

}  // namespace chassis::server
