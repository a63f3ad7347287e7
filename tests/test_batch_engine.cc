// Continuous batching: row-invariant forward passes, the batch engine's scheduling, stop strings and
// OpenAI's penalties. The oracle for batching is the same computation run alone: every result here
// must be bit-identical whatever else shares the batch.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "engine/batch_engine.h"
#include "engine/kv_blocks.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/sampler.h"
#include "engine/stop_strings.h"
#include "models/transformer.h"
#include "test_util.h"
#include "tiny_model.h"

namespace chassis {
namespace {

std::vector<int32_t> random_tokens(size_t n, int32_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(1, n_vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// Three prompts (one past the 64 rows where the reference tiles attention) evaluated alone, all
// interleaved in one batch, and in small chunks: the last logits must agree bit for bit, and so must
// the next decode step taken together or alone.
void check_row_invariance(const std::string& path) {
  auto model = Model::load(path);
  const ModelConfig& c = model->config();
  ThreadPool pool(2);
  Transformer tf(c, model->weights(), pool, 256);
  const int64_t n_ctx = 128, V = c.n_vocab;
  const std::vector<std::vector<int32_t>> prompts = {random_tokens(7, int32_t(V), 1), random_tokens(70, int32_t(V), 2),
                                                     random_tokens(13, int32_t(V), 3)};
  auto run = [&](const std::vector<std::vector<BatchToken>>& calls, size_t n_wanted) {
    std::vector<float> all;
    for (const auto& rows : calls) {
      size_t wanted = 0;
      for (const auto& r : rows) wanted += r.logits;
      std::vector<float> out(wanted * size_t(V));
      tf.forward_rows(rows.data(), int64_t(rows.size()), out.data());
      all.insert(all.end(), out.begin(), out.end());
    }
    EXPECT_EQ(all.size(), n_wanted * size_t(V));
    return all;
  };
  auto rows_of = [&](size_t s, KvCache& cache, int64_t from, int64_t to) {
    std::vector<BatchToken> rows;
    for (int64_t i = from; i < to; ++i)
      rows.push_back(BatchToken{prompts[s][size_t(i)], i, &cache, i == int64_t(prompts[s].size()) - 1});
    return rows;
  };
  auto fresh = [&] {
    std::vector<KvCache> caches;
    for (int i = 0; i < 3; ++i) caches.emplace_back(c.n_layer, n_ctx, c.n_head_kv, c.head_dim);
    return caches;
  };

  // Alone: each prompt in its own call.
  auto a = fresh();
  std::vector<float> alone;
  for (size_t s = 0; s < 3; ++s) {
    auto l = run({rows_of(s, a[s], 0, int64_t(prompts[s].size()))}, 1);
    alone.insert(alone.end(), l.begin(), l.end());
  }
  // Together: all rows of all prompts in one call, sequence by sequence.
  auto b = fresh();
  std::vector<BatchToken> together;
  for (size_t s = 0; s < 3; ++s) {
    auto r = rows_of(s, b[s], 0, int64_t(prompts[s].size()));
    together.insert(together.end(), r.begin(), r.end());
  }
  EXPECT_EQ(run({together}, 3), alone);
  // Chunked: 5 rows of each prompt per call, interleaved, as chunked prefill does under load.
  auto ch = fresh();
  std::vector<std::vector<BatchToken>> calls;
  for (int64_t from = 0; from < 70; from += 5) {
    std::vector<BatchToken> call;
    for (size_t s = 0; s < 3; ++s) {
      const int64_t n = int64_t(prompts[s].size());
      if (from >= n) continue;
      auto r = rows_of(s, ch[s], from, std::min(n, from + 5));
      call.insert(call.end(), r.begin(), r.end());
    }
    calls.push_back(call);
  }
  // Logits arrive in the order the prompts end: 7 (call 1), 13 (call 2), 70 (last call).
  auto chunked = run(calls, 3);
  std::vector<float> reordered;
  for (size_t s : {0, 2, 1}) reordered.insert(reordered.end(), alone.begin() + long(s * V), alone.begin() + long((s + 1) * V));
  EXPECT_EQ(chunked, reordered);

  // One decode step for all three together == each alone (caches a and b hold the same prompts).
  std::vector<BatchToken> step;
  for (size_t s = 0; s < 3; ++s) step.push_back(BatchToken{42, int64_t(prompts[s].size()), &b[s], true});
  auto together_step = run({step}, 3);
  for (size_t s = 0; s < 3; ++s) {
    auto one = run({{BatchToken{42, int64_t(prompts[s].size()), &a[s], true}}}, 1);
    EXPECT_TRUE(std::equal(one.begin(), one.end(), together_step.begin() + long(s * V))) << "sequence " << s;
  }
}

class RowInvariance : public ::testing::TestWithParam<const char*> {};

TEST_P(RowInvariance, MixedBatchesGiveTheSameLogitsAsAlone) { check_row_invariance(test::shared(GetParam())); }

// With experts, a batch groups its rows by expert; each row must still come out as when alone. F16
// weights, whose batched kernel sums differently from the single-row one, so a grouped expert
// product that left the single-row path would show.
TEST(RowInvarianceMoe, MixedBatchesGiveTheSameLogitsAsAlone) {
  test::TinyModelSpec spec;
  spec.n_expert = 4;
  spec.n_expert_used = 2;
  const std::string f32 = test::temp_path("tiny-moe-f32.gguf"), f16 = test::temp_path("tiny-moe-f16.gguf");
  test::write_file(f32, test::build_tiny_model(spec));
  quantize_gguf(f32, f16, *quant_preset("f16"));
  auto model = Model::load(f16);
  ASSERT_EQ(model->config().n_expert, 4);
  ASSERT_EQ(model->weights().layers[0].ffn_up_exps.size(), 4u);
  check_row_invariance(f16);
}

INSTANTIATE_TEST_SUITE_P(Models, RowInvariance,
                         ::testing::Values("models/stories260K/stories260K.gguf", "golden/models/tiny-qwen3-Q4_K_M.gguf",
                                           "golden/models/tiny-gemma2-Q8_0.gguf", "golden/models/tiny-phi3-Q4_K_M.gguf",
                                           "golden/models/tiny-llama-F16.gguf", "golden/models/tiny-qwen2-Q4_0.gguf"));

// ---- BatchEngine ----

struct Outcome {
  std::vector<int32_t> ids;
  std::string text, finish;
  SequenceStats stats;
};

Outcome collect(Sequence& seq) {
  Outcome o;
  SequenceEvent ev;
  while (seq.next(ev)) {
    if (ev.kind == SequenceEvent::Kind::Token) {
      if (ev.token.id >= 0) o.ids.push_back(ev.token.id);
      o.text += ev.token.text;
    } else {
      o.finish = ev.finish_reason;
      o.stats = ev.stats;
    }
  }
  return o;
}

class BatchEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(test::shared("models/stories260K/stories260K.gguf")).release(); }
  static void TearDownTestSuite() { delete model_; }
  static BatchEngineOptions options(int slots, int64_t step_tokens = 256) {
    BatchEngineOptions o;
    o.n_slots = slots;
    o.n_ctx = 256;
    o.n_threads = 2;
    o.step_tokens = step_tokens;
    return o;
  }
  CompletionRequest request(const std::string& text, int max_tokens, float temperature, uint64_t seed) const {
    CompletionRequest r;
    r.prompt = model_->tokenizer().tokenize(text, true, false);
    r.max_tokens = max_tokens;
    r.sampling.temperature = temperature;
    r.sampling.seed = seed;
    return r;
  }
  static Model* model_;
};
Model* BatchEngineTest::model_ = nullptr;

TEST_F(BatchEngineTest, ConcurrentRequestsGetTheTokensTheyGetAlone) {
  std::vector<CompletionRequest> reqs;
  const char* texts[] = {"Once upon a time", "The little dog", "Lily and Tom went to the park. They saw a big",
                         "One day", "Sam had a red ball. He", "The sun", "A cat sat on the mat and", "Mom said"};
  for (int i = 0; i < 8; ++i) reqs.push_back(request(texts[i], 24 + 5 * i, i % 2 ? 0.8f : 0.0f, 100 + i));
  std::vector<Outcome> alone;
  {
    BatchEngine engine(*model_, options(1));
    for (const auto& r : reqs) alone.push_back(collect(*engine.submit(r)));
  }
  // Three slots, 16 tokens per step: prompts are prefilled in chunks while others decode.
  BatchEngine engine(*model_, options(3, 16));
  std::vector<std::shared_ptr<Sequence>> seqs;
  for (const auto& r : reqs) seqs.push_back(engine.submit(r));
  for (size_t i = 0; i < seqs.size(); ++i) {
    const Outcome o = collect(*seqs[i]);
    EXPECT_EQ(o.ids, alone[i].ids) << texts[i];
    EXPECT_EQ(o.text, alone[i].text);
    EXPECT_EQ(o.finish, alone[i].finish);
    EXPECT_EQ(o.stats.prompt_tokens, int64_t(reqs[i].prompt.size()));
  }
  EXPECT_TRUE(engine.wait_idle(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  EXPECT_EQ(engine.stats().active, 0u);
}

TEST_F(BatchEngineTest, ASharedPrefixIsReusedAndChangesNothing) {
  const auto first = request("Lily and Tom went to the park. They saw a big dog. The dog was brown and it ran", 8, 0.0f, 1);
  auto second = request("Lily and Tom went to the park. They saw a big dog. The dog was brown and it sat", 16, 0.0f, 1);
  size_t common = 0;
  while (first.prompt[common] == second.prompt[common]) ++common;
  ASSERT_GE(common, 16u);
  const int64_t B = options(2).kv_block;
  Outcome fresh;
  {
    BatchEngine engine(*model_, options(2));
    fresh = collect(*engine.submit(second));
  }
  BatchEngine engine(*model_, options(2));
  collect(*engine.submit(first));
  const Outcome reused = collect(*engine.submit(second));
  // Whole blocks of the common prefix are reused.
  EXPECT_EQ(reused.stats.cached_tokens, int64_t(common) / B * B);
  EXPECT_EQ(fresh.stats.cached_tokens, 0);
  EXPECT_EQ(reused.ids, fresh.ids);
  // The same prompt again: every whole block before its last token.
  const Outcome again = collect(*engine.submit(second));
  EXPECT_EQ(again.stats.cached_tokens, (int64_t(second.prompt.size()) - 1) / B * B);
  EXPECT_EQ(again.ids, fresh.ids);
  EXPECT_TRUE(engine.wait_idle(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  EXPECT_EQ(engine.stats().kv_blocks_in_use, 0);
  EXPECT_GT(engine.stats().kv_blocks_cached, 0);
}

TEST_F(BatchEngineTest, RunningRequestsShareTheBlocksOfACommonPrefix) {
  // A long common "system prompt", then different questions, all running at once.
  const std::string system = "Once upon a time there was a little girl named Lily. She liked to play in the park with "
                             "her friends. One day she saw a big red ball under a tree. ";
  BatchEngine engine(*model_, options(4));
  auto lead = request(system + "She", 40, 0.0f, 1);
  auto first = engine.submit(lead);
  SequenceEvent ev;
  ASSERT_TRUE(first->next(ev));  // its prompt is evaluated and its blocks published
  std::vector<std::shared_ptr<Sequence>> more;
  for (const char* q : {"Tom", "The dog", "Her mom"}) more.push_back(engine.submit(request(system + q, 12, 0.0f, 1)));
  const int64_t B = options(4).kv_block;
  for (auto& s : more) {
    const Outcome o = collect(*s);
    EXPECT_GE(o.stats.cached_tokens, int64_t(lead.prompt.size() - 2) / B * B - B) << "prefix not shared";
    EXPECT_GT(o.stats.cached_tokens, 0);
  }
  collect(*first);
}

TEST_F(BatchEngineTest, ASmallPoolMakesRequestsWaitNotFail) {
  auto o = options(4);
  o.kv_tokens = 128;  // two requests of 64 positions at a time
  BatchEngine engine(*model_, o);
  std::vector<std::shared_ptr<Sequence>> seqs;
  std::vector<Outcome> alone;
  const char* texts[] = {"One day", "The cat", "A big dog", "Lily", "Tom ran"};
  for (const char* t : texts) seqs.push_back(engine.submit(request(t, 56, 0.0f, 1)));
  for (auto& s : seqs) {
    const Outcome out = collect(*s);
    EXPECT_EQ(out.finish, "length");
    EXPECT_EQ(out.ids.size(), 56u);
  }
  EXPECT_TRUE(engine.wait_idle(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  EXPECT_EQ(engine.stats().kv_blocks_in_use, 0);
  // A request that could never fit is refused at once.
  EXPECT_THROW(engine.submit(request("x", 200, 0.0f, 1)), Error);
}

TEST_F(BatchEngineTest, AnF32CacheRunsTheSameScheduling) {
  auto o = options(3, 16);
  o.kv_f32 = true;
  std::vector<Outcome> alone;
  const char* texts[] = {"Once upon a time", "The little dog", "Lily and Tom went to the park."};
  {
    BatchEngine engine(*model_, o);
    for (const char* t : texts) alone.push_back(collect(*engine.submit(request(t, 24, 0.0f, 1))));
  }
  BatchEngine engine(*model_, o);
  std::vector<std::shared_ptr<Sequence>> seqs;
  for (const char* t : texts) seqs.push_back(engine.submit(request(t, 24, 0.0f, 1)));
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(collect(*seqs[i]).ids, alone[i].ids);
  EXPECT_EQ(engine.stats().kv_bytes, 2 * BatchEngine(*model_, options(3, 16)).stats().kv_bytes);
}

TEST_F(BatchEngineTest, LimitsAndStopStrings) {
  BatchEngine engine(*model_, options(2));
  const Outcome limited = collect(*engine.submit(request("Once upon a time", 7, 0.0f, 1)));
  EXPECT_EQ(limited.ids.size(), 7u);
  EXPECT_EQ(limited.finish, "length");
  const Outcome full = collect(*engine.submit(request("Once upon a time", 60, 0.0f, 1)));
  ASSERT_GT(full.text.size(), 20u);
  // Stop at a word from the middle of the greedy text: the output is what came before it.
  const std::string stop = full.text.substr(12, 5);
  auto r = request("Once upon a time", 60, 0.0f, 1);
  r.stop = {"\x01never", stop};
  const Outcome stopped = collect(*engine.submit(r));
  EXPECT_EQ(stopped.finish, "stop");
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(stop)));
  // The context's end: a prompt that fills all but a few positions stops with "length".
  auto tight = request("Once upon a time", -1, 0.0f, 1);
  tight.prompt.resize(250, tight.prompt.back());
  const Outcome ctx = collect(*engine.submit(tight));
  EXPECT_EQ(ctx.finish, "length");
  EXPECT_LE(int64_t(ctx.ids.size()), 6);
}

TEST_F(BatchEngineTest, BadPromptsAreRejectedAtSubmit) {
  BatchEngine engine(*model_, options(1));
  CompletionRequest empty;
  EXPECT_THROW(engine.submit(empty), Error);
  auto too_long = request("x", 4, 0.0f, 1);
  too_long.prompt.assign(256, 5);
  try {
    engine.submit(too_long);
    FAIL() << "a prompt as long as the context was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("256 tokens"), std::string::npos) << e.what();
  }
  auto bad_id = request("x", 4, 0.0f, 1);
  bad_id.prompt.push_back(1 << 20);
  EXPECT_THROW(engine.submit(bad_id), Error);
}

// A client that has seen its request end may send the next one at once: with one slot and no queue
// it must be admitted, never refused as "queue full" because the finished sequence still counted
// (the end was delivered before the slot was freed; under ASan a follow-up lost that race).
TEST_F(BatchEngineTest, ASlotIsFreeOnceItsRequestHasEnded) {
  auto o = options(1);
  o.max_queue = 0;
  BatchEngine engine(*model_, o);
  for (int i = 0; i < 100; ++i) {
    std::shared_ptr<Sequence> seq;
    ASSERT_NO_THROW(seq = engine.submit(request("One day", 1, 0.0f, 1))) << "request " << i;
    ASSERT_EQ(collect(*seq).ids.size(), 1u);
  }
}

TEST_F(BatchEngineTest, CancelFreesTheSlotAndAFullQueueSaysSo) {
  auto o = options(1);
  o.max_queue = 1;
  BatchEngine engine(*model_, o);
  auto endless = request("Once upon a time", -1, 0.8f, 7);
  endless.ignore_eos = true;
  auto a = engine.submit(endless);
  auto b = engine.submit(endless);
  EXPECT_THROW(engine.submit(endless), QueueFull);
  SequenceEvent ev;
  ASSERT_TRUE(a->next(ev));  // running
  a->cancel();
  b->cancel();
  EXPECT_EQ(collect(*a).finish, "cancelled");
  EXPECT_EQ(collect(*b).finish, "cancelled");
  EXPECT_TRUE(engine.wait_idle(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  EXPECT_EQ(engine.stats().active, 0u);
  EXPECT_EQ(engine.stats().queued, 0u);
  // The slot serves the next request.
  EXPECT_EQ(collect(*engine.submit(request("One day", 3, 0.0f, 1))).ids.size(), 3u);
}

TEST_F(BatchEngineTest, DestroyingTheEngineEndsEverySequence) {
  std::shared_ptr<Sequence> a, b;
  {
    BatchEngine engine(*model_, options(1));
    auto endless = request("Once upon a time", -1, 0.8f, 7);
    endless.ignore_eos = true;
    a = engine.submit(endless);
    b = engine.submit(endless);
    SequenceEvent ev;
    ASSERT_TRUE(a->next(ev));
  }
  EXPECT_EQ(collect(*a).finish, "cancelled");
  EXPECT_EQ(collect(*b).finish, "cancelled");
}

// ---- Stop strings and penalties ----

TEST(StopMatcher, HoldsBackPossibleStartsAndCutsAtTheFirstStop) {
  StopMatcher m({"</end>", "STOP"});
  EXPECT_EQ(m.push("hello <"), "hello ");
  EXPECT_EQ(m.push("/e"), "");
  EXPECT_EQ(m.push("x"), "</ex");  // no longer a prefix of a stop string
  EXPECT_EQ(m.push(" ST"), " ");
  EXPECT_EQ(m.push("OP and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("later"), "");
  EXPECT_EQ(m.flush(), "");

  StopMatcher tail({"###"});
  EXPECT_EQ(tail.push("a ##"), "a ");
  EXPECT_FALSE(tail.stopped());
  EXPECT_EQ(tail.flush(), "##");  // generation ended for another reason: the held text is output

  StopMatcher earliest({"bc", "ab"});
  EXPECT_EQ(earliest.push("xabc"), "x");
  StopMatcher none({});
  EXPECT_EQ(none.push("anything"), "anything");
  StopMatcher utf8({"é!"});
  EXPECT_EQ(utf8.push("caf\xC3\xA9"), "caf");
  EXPECT_EQ(utf8.push("?"), "\xC3\xA9?");
}

TEST(SamplerPenalties, PresenceAndFrequencyFollowOpenAisFormula) {
  SamplingParams p;
  p.temperature = 0;
  const float logits[3] = {1.0f, 0.9f, 0.0f};
  p.presence_penalty = 0.2f;  // 1.0 - 0.2 < 0.9
  EXPECT_EQ(Sampler(p).sample(logits, 3, {0}), 1);
  p.presence_penalty = 0.05f;  // 0.95 > 0.9
  EXPECT_EQ(Sampler(p).sample(logits, 3, {0}), 0);
  p.presence_penalty = 0;
  p.frequency_penalty = 0.06f;
  EXPECT_EQ(Sampler(p).sample(logits, 3, {0}), 0);     // 1.0 - 0.06
  EXPECT_EQ(Sampler(p).sample(logits, 3, {0, 0}), 1);  // 1.0 - 0.12
  p.frequency_penalty = -1.5f;                         // negative: encourages repeats
  EXPECT_EQ(Sampler(p).sample(logits, 3, {2}), 2);
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

// A constraint that allows two tokens, alternately, and is complete after five.
class Alternate : public TokenConstraint {
 public:
  Alternate(int32_t a, int32_t b) : a_(a), b_(b) {}
  bool allowed_next(std::vector<uint8_t>& allowed) override {
    allowed[size_t(seen_.size() % 2 ? b_ : a_)] = 1;
    return true;
  }
  void accept(int32_t t) override { seen_.push_back(t); }
  bool complete() const override { return seen_.size() == 5; }
  std::vector<int32_t> seen_;

 private:
  int32_t a_, b_;
};

class NothingAllowed : public TokenConstraint {
 public:
  bool allowed_next(std::vector<uint8_t>&) override { return true; }
  void accept(int32_t) override {}
};

TEST_F(BatchEngineTest, ATokenConstraintDecidesWhatMaySample) {
  BatchEngine engine(*model_, options(2));
  auto r = request("Once upon a time", 50, 0.9f, 5);
  auto alt = std::make_shared<Alternate>(300, 301);
  r.constraint = alt;
  const Outcome o = collect(*engine.submit(r));
  EXPECT_EQ(o.ids, (std::vector<int32_t>{300, 301, 300, 301, 300}));
  EXPECT_EQ(alt->seen_, o.ids);
  EXPECT_EQ(o.finish, "stop");
  auto none = request("Once upon a time", 50, 0.9f, 5);
  none.constraint = std::make_shared<NothingAllowed>();
  const Outcome e = collect(*engine.submit(none));
  EXPECT_EQ(e.finish, "error");
  EXPECT_TRUE(e.ids.empty());
  // An unconstrained request beside them is unaffected.
  EXPECT_EQ(collect(*engine.submit(request("One day", 4, 0.0f, 1))).ids.size(), 4u);
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

TEST(KvBlockManager, PublishedPrefixesAreFoundAndEvictedLeastRecentlyUsedFirst) {
  KvBlockManager m(4, 2);
  const std::vector<int32_t> toks = {1, 2, 3, 4, 5};
  std::vector<int32_t> a = {m.allocate(), m.allocate()};
  EXPECT_EQ(m.available(), 2);
  m.publish(a, 0, toks);
  m.publish(a, 1, toks);
  m.publish(a, 2, toks);  // no third block: ignored
  // Another sequence finds both blocks while the first still holds them.
  auto shared = m.acquire_prefix({1, 2, 3, 4, 9}, 4);
  EXPECT_EQ(shared, a);
  EXPECT_TRUE(m.acquire_prefix({1, 2, 3, 9}, 4).size() == 1);  // only the first block matches
  m.release({a[0]});
  m.release(a);
  m.release(shared);
  EXPECT_EQ(m.in_use(), 0);
  EXPECT_EQ(m.cached(), 2);
  EXPECT_EQ(m.available(), 4);
  // max_tokens caps the reuse (the last prompt token must run).
  auto capped = m.acquire_prefix(toks, 3);
  EXPECT_EQ(capped.size(), 1u);
  m.release(capped);
  // Taking every block evicts the cached ones, children first; then nothing matches any more.
  std::vector<int32_t> all;
  for (int i = 0; i < 4; ++i) all.push_back(m.allocate());
  EXPECT_EQ(m.allocate(), -1);
  m.release(all);
  EXPECT_TRUE(m.acquire_prefix(toks, 4).empty());
  EXPECT_THROW(m.release({all[0]}), Error);  // released twice
}

TEST(KvBlockManager, AReusedParentIdNeverMatchesOldChildren) {
  KvBlockManager m(3, 1);
  std::vector<int32_t> seq = {m.allocate(), m.allocate()};
  m.publish(seq, 0, {7, 8});
  m.publish(seq, 1, {7, 8});
  m.release(seq);  // both cached; the child (last block) is the older one
  // Evict exactly one block: the child goes first, then the parent's id can be reused.
  const int32_t x = m.allocate();  // the free block
  const int32_t y = m.allocate();  // evicts the child
  EXPECT_EQ(y, seq[1]);
  const auto still = m.acquire_prefix({7, 8}, 2);
  EXPECT_EQ(still, std::vector<int32_t>{seq[0]});  // the parent survives alone
  m.release(still);
  m.release({x, y});
}

}  // namespace
}  // namespace chassis
