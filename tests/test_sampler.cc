// Sampling: greedy is argmax, a seed reproduces a draw, and every filter keeps only what it should.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "engine/sampler.h"

namespace chassis {
namespace {

std::vector<float> logits_ramp(int n) {
  std::vector<float> l(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) l[size_t(i)] = float(i % 7) * 0.5f + (i == 13 ? 10.f : 0.f);
  return l;
}

TEST(Sampler, GreedyIsArgmax) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  auto l = logits_ramp(100);
  EXPECT_EQ(s.sample(l.data(), 100, {}), 13);
}

TEST(Sampler, SameSeedSameDraws) {
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  p.seed = 1234;
  auto l = logits_ramp(50);
  Sampler a(p), b(p);
  std::vector<int32_t> da, db;
  for (int i = 0; i < 50; ++i) {
    da.push_back(a.sample(l.data(), 50, {}));
    db.push_back(b.sample(l.data(), 50, {}));
  }
  EXPECT_EQ(da, db);
  EXPECT_GT(std::set<int32_t>(da.begin(), da.end()).size(), 3u);  // temperature 1.5 really samples
}

TEST(Sampler, TopKLimitsTheCandidates) {
  SamplingParams p;
  p.temperature = 5.0f;
  p.top_k = 3;
  p.top_p = 1;
  p.min_p = 0;
  std::vector<float> l = {0, 1, 2, 3, 4, 5};
  for (uint64_t seed = 0; seed < 200; ++seed) {
    p.seed = seed;
    Sampler s(p);
    EXPECT_GE(s.sample(l.data(), 6, {}), 3);
  }
}

TEST(Sampler, TopPAndMinPDropTheTail) {
  // probabilities ~ {0.6, 0.3, 0.1 spread over 8 tokens}
  std::vector<float> l = {std::log(0.6f), std::log(0.3f)};
  for (int i = 0; i < 8; ++i) l.push_back(std::log(0.1f / 8));
  for (auto mode : {0, 1}) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = mode == 0 ? 0.85f : 1.0f;
    p.min_p = mode == 1 ? 0.2f : 0.0f;
    for (uint64_t seed = 0; seed < 300; ++seed) {
      p.seed = seed;
      Sampler s(p);
      EXPECT_LE(s.sample(l.data(), int64_t(l.size()), {}), 1) << "mode " << mode;
    }
  }
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 3.0f;
  std::vector<float> l = {1.0f, 2.0f, 1.5f};
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 3, {}), 1);
  EXPECT_EQ(s.sample(l.data(), 3, {1}), 2);  // 2.0 / 3 < 1.5
}

TEST(Sampler, MaskRestrictsChoices) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  std::vector<float> l = {5, 1, 3};
  std::vector<uint8_t> allowed = {0, 1, 1};
  EXPECT_EQ(s.sample(l.data(), 3, {}, &allowed), 2);
}

TEST(Sampler, LogprobsAreLogSoftmax) {
  std::vector<float> l = {1, 2, 3};
  const auto top = top_logprobs(l.data(), 3, 2);
  const double z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].first, 2);
  EXPECT_NEAR(top[0].second, 3 - z, 1e-6);
  EXPECT_NEAR(token_logprob(l.data(), 3, 0), 1 - z, 1e-6);
}

}  // namespace
}  // namespace chassis
