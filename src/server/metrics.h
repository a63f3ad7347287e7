// Counters for GET /metrics in Prometheus' text format (version 0.0.4).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "engine/batch_engine.h"

namespace chassis::server {

class ModelRegistry;

class Metrics {
 public:
  void count_request(const std::string& route, int status);
  void count_sequence(const std::string& model, const SequenceStats& s);
  void count_disconnect();
  // The exposition, with the registry's live gauges (queue depth, active sequences, KV use, models).
  std::string render(const ModelRegistry& registry) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status) -> count
  uint64_t prompt_tokens_ = 0, cached_tokens_ = 0, completion_tokens_ = 0, sequences_ = 0, disconnects_ = 0;
  double ttft_sum_s_ = 0;
  uint64_t ttft_count_ = 0;
  // time to first token histogram, cumulative buckets (seconds)
  static constexpr double kBuckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  uint64_t ttft_buckets_[sizeof(kBuckets) / sizeof(double)] = {};
};

}  // namespace chassis::server
