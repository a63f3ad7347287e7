#include "server/metrics.h"

#include <sstream>

#include "server/model_registry.h"

namespace chassis::server {

void Metrics::count_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::count_sequence(const std::string& model, const SequenceStats& s) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++sequences_;
  prompt_tokens_ += uint64_t(s.prompt_tokens);
  cached_tokens_ += uint64_t(s.cached_tokens);
  completion_tokens_ += uint64_t(s.completion_tokens);
  if (s.completion_tokens > 0) {
    const double t = s.ttft_ms / 1000.0;
    ttft_sum_s_ += t;
    ++ttft_count_;
    for (size_t i = 0; i < std::size(kBuckets); ++i)
      if (t <= kBuckets[i]) ++ttft_buckets_[i];
  }
}

void Metrics::count_disconnect() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++disconnects_;
}

std::string Metrics::render(const ModelRegistry& registry) const {
  std::ostringstream o;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    o << "# HELP chassis_requests_total HTTP requests by route and status.\n# TYPE chassis_requests_total counter\n";
    for (const auto& [key, n] : requests_)
      o << "chassis_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
    o << "# HELP chassis_sequences_total Generation sequences finished.\n# TYPE chassis_sequences_total counter\n"
      << "chassis_sequences_total " << sequences_ << "\n";
    o << "# HELP chassis_prompt_tokens_total Prompt tokens of finished sequences.\n# TYPE chassis_prompt_tokens_total counter\n"
      << "chassis_prompt_tokens_total " << prompt_tokens_ << "\n";
    o << "# HELP chassis_cached_prompt_tokens_total Prompt tokens reused from the KV cache.\n"
         "# TYPE chassis_cached_prompt_tokens_total counter\n"
      << "chassis_cached_prompt_tokens_total " << cached_tokens_ << "\n";
    o << "# HELP chassis_generated_tokens_total Tokens generated.\n# TYPE chassis_generated_tokens_total counter\n"
      << "chassis_generated_tokens_total " << completion_tokens_ << "\n";
    o << "# HELP chassis_client_disconnects_total Requests whose client left before the end.\n"
         "# TYPE chassis_client_disconnects_total counter\n"
      << "chassis_client_disconnects_total " << disconnects_ << "\n";
    o << "# HELP chassis_time_to_first_token_seconds From request to first generated token.\n"
         "# TYPE chassis_time_to_first_token_seconds histogram\n";
    for (size_t i = 0; i < std::size(kBuckets); ++i)
      o << "chassis_time_to_first_token_seconds_bucket{le=\"" << kBuckets[i] << "\"} " << ttft_buckets_[i] << "\n";
    o << "chassis_time_to_first_token_seconds_bucket{le=\"+Inf\"} " << ttft_count_ << "\n"
      << "chassis_time_to_first_token_seconds_sum " << ttft_sum_s_ << "\n"
      << "chassis_time_to_first_token_seconds_count " << ttft_count_ << "\n";
  }
  const auto models = registry.status();
  size_t loaded = 0;
  for (const auto& m : models) loaded += m.loaded;
  o << "# HELP chassis_models_loaded Models loaded now.\n# TYPE chassis_models_loaded gauge\nchassis_models_loaded "
    << loaded << "\n";
  auto gauge = [&](const char* name, const char* help, auto get) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
    for (const auto& m : models)
      if (m.loaded) o << name << "{model=\"" << m.id << "\"} " << get(m) << "\n";
  };
  gauge("chassis_queue_depth", "Requests waiting for a slot.", [](const ModelStatus& m) { return m.engine.queued; });
  gauge("chassis_active_sequences", "Sequences being evaluated.", [](const ModelStatus& m) { return m.engine.active; });
  gauge("chassis_kv_blocks", "Blocks in the KV pool.", [](const ModelStatus& m) { return m.engine.kv_blocks; });
  gauge("chassis_kv_blocks_in_use", "KV blocks held by running sequences (0 when idle: none leaked).",
        [](const ModelStatus& m) { return m.engine.kv_blocks_in_use; });
  gauge("chassis_kv_blocks_cached", "Unreferenced KV blocks kept for prefix reuse.",
        [](const ModelStatus& m) { return m.engine.kv_blocks_cached; });
  gauge("chassis_kv_block_tokens", "Positions per KV block.", [](const ModelStatus& m) { return m.engine.kv_block_size; });
  gauge("chassis_kv_cache_bytes", "Bytes of KV cache allocated.", [](const ModelStatus& m) { return m.engine.kv_bytes; });
  gauge("chassis_model_bytes", "Estimated resident bytes (weights + KV).", [](const ModelStatus& m) { return m.bytes; });
  return o.str();
}

}  // namespace chassis::server
