#include "server/model_registry.h"

#include "core/log.h"
#include "engine/chat.h"
#include "server/openai_api.h"
#include "store/hub_cache.h"

namespace chassis::server {

ModelRegistry::ModelRegistry(std::vector<ModelSpec> specs, RegistryOptions options) : options_(std::move(options)) {
  for (auto& s : specs) {
    if (entries_.count(s.id)) throw Error("two models are named '" + s.id + "' (rename one with NAME=PATH)");
    order_.push_back(s.id);
    auto e = std::make_unique<Entry>();
    e->spec = std::move(s);
    entries_[e->spec.id] = std::move(e);
  }
}

bool ModelRegistry::has(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.count(id) > 0;
}

std::vector<std::string> ModelRegistry::ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return order_;
}

bool ModelRegistry::busy(const Entry& e) const {
  if (!e.loaded) return false;
  // Requests hold the LoadedModel while they run; only the registry's reference means unused.
  if (e.loaded.use_count() > 1) return true;
  const BatchEngineStats s = e.loaded->engine->stats();
  return s.active > 0 || s.queued > 0;
}

std::shared_ptr<LoadedModel> ModelRegistry::acquire(const std::string& id) {
  Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      // A hub name in the local model store is served too (never downloaded on a request's behalf).
      std::string path;
      if (auto ref = store::parse_model_ref(id)) {
        try {
          path = store::resolve_cached(*ref, store::hub_cache_root()).path.string();
        } catch (const std::exception&) {
        }
      }
      if (path.empty())
        throw HttpError(404, "The model '" + id + "' does not exist (GET /v1/models lists what this server offers)",
                        "model", "model_not_found");
      auto e = std::make_unique<Entry>();
      e->spec = ModelSpec{id, path};
      order_.push_back(id);
      it = entries_.emplace(id, std::move(e)).first;
    }
    entry = it->second.get();
    if (entry->loaded) {
      entry->last_used = std::chrono::steady_clock::now();
      return entry->loaded;
    }
  }
  // Load outside the registry lock: requests to other models go on meanwhile.
  std::lock_guard<std::mutex> load_lock(entry->load_mutex);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (entry->loaded) {  // another request loaded it while this one waited
      entry->last_used = std::chrono::steady_clock::now();
      return entry->loaded;
    }
  }
  auto lm = std::make_shared<LoadedModel>();
  lm->id = id;
  try {
    Model::LoadOptions lo;
    lo.quant = options_.quant;
    lo.pack = options_.pack;
    lo.threads = options_.engine.n_threads;
    lm->model = Model::load(entry->spec.path, lo);
  } catch (const std::exception& e) {
    throw HttpError(500, "loading the model '" + id + "' failed: " + e.what(), "model", "model_load_failed");
  }
  const ModelConfig& c = lm->model->config();
  BatchEngineOptions eo = options_.engine;
  if (eo.n_ctx <= 0) eo.n_ctx = std::min<int64_t>(c.n_ctx_train > 0 ? c.n_ctx_train : 4096, 4096);
  const uint64_t kv_positions = eo.kv_tokens > 0 ? uint64_t(eo.kv_tokens) : uint64_t(eo.n_slots) * uint64_t(eo.n_ctx);
  const uint64_t kv = kv_positions * uint64_t(c.n_layer) * uint64_t(c.n_embd_kv()) * (eo.kv_f32 ? 8 : 4);  // k + v
  // The weights as held: the file, or less once quantized at load (the originals' pages released).
  lm->bytes = (options_.quant ? lm->model->weights().n_bytes : lm->model->file_size()) + kv;
  if (options_.memory_budget > 0) {
    if (lm->bytes > options_.memory_budget)
      throw HttpError(400, "the model '" + id + "' needs about " + std::to_string(lm->bytes >> 20) +
                               " MiB (weights + KV cache), more than the memory budget of " +
                               std::to_string(options_.memory_budget >> 20) + " MiB",
                      "model", "model_too_large");
    // Unload idle models, least recently used first, until this one fits.
    std::lock_guard<std::mutex> lock(mutex_);
    for (;;) {
      uint64_t used = 0;
      Entry* victim = nullptr;
      for (auto& [name, e] : entries_) {
        if (!e->loaded) continue;
        used += e->loaded->bytes;
        if (!busy(*e) && (!victim || e->last_used < victim->last_used)) victim = e.get();
      }
      if (used + lm->bytes <= options_.memory_budget) break;
      if (!victim) {
        HttpError err(503, "the model '" + id + "' does not fit in the memory budget while the loaded models are busy",
                      "model", "memory_budget_busy");
        err.retry_after_s = 5;
        throw err;
      }
      log_info("unloading '" + victim->spec.id + "' to make room for '" + id + "'");
      victim->loaded.reset();
    }
  }
  try {
    if (!options_.chat_template_file.empty())
      lm->chat_template = chat_template_from_file(options_.chat_template_file, *lm->model);
    else
      lm->chat_template = chat_template_of(*lm->model);
    lm->engine = std::make_unique<BatchEngine>(*lm->model, eo);
  } catch (const std::exception& e) {
    throw HttpError(500, "loading the model '" + id + "' failed: " + e.what(), "model", "model_load_failed");
  }
  log_info("loaded '" + id + "' from " + entry->spec.path + " (" + std::to_string(lm->bytes >> 20) + " MiB)");
  std::lock_guard<std::mutex> lock(mutex_);
  entry->loaded = lm;
  entry->last_used = std::chrono::steady_clock::now();
  return lm;
}

void ModelRegistry::unload_idle() {
  if (options_.keep_alive.count() <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<LoadedModel>> dropped;  // destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [name, e] : entries_) {
      if (!e->loaded || busy(*e) || now - e->last_used < options_.keep_alive) continue;
      log_info("unloading '" + name + "' after " + std::to_string(options_.keep_alive.count()) + " s idle");
      dropped.push_back(std::move(e->loaded));
      e->loaded.reset();
    }
  }
}

std::vector<ModelStatus> ModelRegistry::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ModelStatus> out;
  for (const auto& id : order_) {
    const Entry& e = *entries_.at(id);
    ModelStatus s;
    s.id = id;
    s.path = e.spec.path;
    s.loaded = e.loaded != nullptr;
    if (e.loaded) {
      s.bytes = e.loaded->bytes;
      s.engine = e.loaded->engine->stats();
    }
    out.push_back(std::move(s));
  }
  return out;
}

void ModelRegistry::cancel_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [name, e] : entries_)
    if (e->loaded) e->loaded->engine->cancel_all();
}

bool ModelRegistry::idle() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [name, e] : entries_)
    if (e->loaded) {
      const BatchEngineStats s = e->loaded->engine->stats();
      if (s.active > 0 || s.queued > 0) return false;
    }
  return true;
}

}  // namespace chassis::server
