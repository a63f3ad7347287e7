#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace chassis {

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}

int32_t Sampler::sample(const float* logits, int64_t n_vocab, const std::vector<int32_t>& recent,
                        const std::vector<uint8_t>* allowed) {
  cand_.clear();
  cand_.reserve(size_t(n_vocab));
  for (int64_t i = 0; i < n_vocab; ++i)
    if (!allowed || (*allowed)[size_t(i)]) cand_.emplace_back(logits[i], static_cast<int32_t>(i));
  if (cand_.empty()) return -1;

  const bool penalize = p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f;
  if (penalize && p_.repeat_last_n != 0) {
    const size_t n = p_.repeat_last_n < 0 ? recent.size() : std::min(recent.size(), size_t(p_.repeat_last_n));
    std::vector<int32_t> seen(recent.end() - long(n), recent.end());
    std::sort(seen.begin(), seen.end());
    for (auto& [logit, id] : cand_) {
      const auto [lo, hi] = std::equal_range(seen.begin(), seen.end(), id);
      const auto count = hi - lo;
      if (count == 0) continue;
      if (p_.repeat_penalty != 1.0f) logit = logit > 0 ? logit / p_.repeat_penalty : logit * p_.repeat_penalty;
      logit -= float(count) * p_.frequency_penalty + p_.presence_penalty;
    }
  }

  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (p_.temperature <= 0) return std::min_element(cand_.begin(), cand_.end(), by_logit)->second;

  if (p_.top_k > 0 && size_t(p_.top_k) < cand_.size()) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    cand_.resize(size_t(p_.top_k));
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Probabilities of the raw (untempered) logits decide top-p and min-p, as in llama.cpp.
  auto probs = [&](float temp) {
    std::vector<double> p(cand_.size());
    double sum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) sum += p[i] = std::exp(double(cand_[i].first - cand_[0].first) / temp);
    for (auto& x : p) x /= sum;
    return p;
  };
  if (p_.top_p < 1.0f) {
    const auto p = probs(1.0f);
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < p.size(); ++i) {
      cum += p[i];
      if (cum >= p_.top_p) { keep = i + 1; break; }
    }
    cand_.resize(keep);
  }
  if (p_.min_p > 0) {
    const auto p = probs(1.0f);
    size_t keep = 1;
    while (keep < p.size() && p[keep] >= p_.min_p * p[0]) ++keep;
    cand_.resize(keep);
  }
  const auto p = probs(p_.temperature);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng_), cum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    cum += p[i];
    if (r < cum) return cand_[i].second;
  }
  return cand_.back().second;
}

namespace {
double log_sum_exp(const float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  return mx + std::log(s);
}
}  // namespace

std::vector<std::pair<int32_t, float>> top_logprobs(const float* logits, int64_t n_vocab, int k) {
  const double lse = log_sum_exp(logits, n_vocab);
  std::vector<std::pair<int32_t, float>> all;
  all.reserve(size_t(n_vocab));
  for (int64_t i = 0; i < n_vocab; ++i) all.emplace_back(int32_t(i), float(logits[i] - lse));
  k = int(std::min<int64_t>(k, n_vocab));
  std::partial_sort(all.begin(), all.begin() + k, all.end(), [](const auto& a, const auto& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  });
  all.resize(size_t(k));
  return all;
}

float token_logprob(const float* logits, int64_t n_vocab, int32_t id) {
  return float(logits[id] - log_sum_exp(logits, n_vocab));
}

}  // namespace chassis
