#include "engine/batch_engine.h"

#include <algorithm>

#include "core/log.h"
#include "engine/stop_strings.h"

namespace chassis {

namespace {
double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
}  // namespace

// ---- Sequence: the client's side ----

void Sequence::push(SequenceEvent ev) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ev.kind == SequenceEvent::Kind::Finished) finished_ = true;
    events_.push_back(std::move(ev));
  }
  ready_.notify_all();
}

bool Sequence::next(SequenceEvent& ev) {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return !events_.empty() || finished_; });
  if (events_.empty()) return false;
  ev = std::move(events_.front());
  events_.pop_front();
  return true;
}

bool Sequence::next_for(SequenceEvent& ev, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [&] { return !events_.empty() || finished_; })) return false;
  if (events_.empty()) return false;
  ev = std::move(events_.front());
  events_.pop_front();
  return true;
}

// ---- The engine's side ----

struct BatchEngine::Slot {
  Slot(KvPool& pool, int64_t n_ctx) : cache(pool, n_ctx) {}
  KvCache cache;                // this sequence's blocks of the shared pool
  std::vector<int32_t> tokens;  // tokens whose keys/values are in `cache` at positions 0..n-1
  size_t published = 0;         // leading blocks already offered for prefix sharing
  int64_t reserved = 0;         // blocks promised at admission and not yet allocated

  // While a sequence runs in this slot:
  std::shared_ptr<Sequence> seq;
  std::vector<int32_t> todo;  // tokens to evaluate next: the rest of the prompt, or the last sampled one
  std::unique_ptr<Sampler> sampler;
  std::vector<int32_t> history;  // prompt + generated, for the penalties
  Utf8Stream utf8;
  std::unique_ptr<StopMatcher> stops;
  SequenceStats stats;
  bool started = false;  // evaluated at least once
  std::chrono::steady_clock::time_point first_token;
};

namespace {
int64_t pool_blocks(const BatchEngineOptions& o) {
  if (o.kv_block < 1) throw Error("the KV block size must be at least 1");
  const int64_t tokens = o.kv_tokens > 0 ? o.kv_tokens : int64_t(std::max(1, o.n_slots)) * std::max<int64_t>(o.n_ctx, 1);
  return (tokens + o.kv_block - 1) / o.kv_block;
}
}  // namespace

BatchEngine::BatchEngine(const Model& model, const BatchEngineOptions& options)
    : model_(model),
      options_(options),
      pool_(std::max(1, options.n_threads)),
      transformer_(model.config(), model.weights(), pool_,
                   std::max<int64_t>(options.step_tokens, std::max(1, options.n_slots))),
      kv_pool_(model.config().n_layer, model.config().n_head_kv, model.config().head_dim, options.kv_block, pool_blocks(options),
               options.kv_f32),
      kv_blocks_(pool_blocks(options), options.kv_block) {
  if (options_.n_slots < 1) throw Error("the engine needs at least one slot");
  if (options_.n_ctx < 2) throw Error("the context must hold at least 2 tokens");
  options_.step_tokens = std::max<int64_t>(options_.step_tokens, options_.n_slots);
  for (int i = 0; i < options_.n_slots; ++i) slots_.push_back(std::make_unique<Slot>(kv_pool_, options_.n_ctx));
  logits_.resize(size_t(options_.n_slots) * size_t(model.config().n_vocab));
  thread_ = std::thread([this] { loop(); });
}

BatchEngine::~BatchEngine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<Sequence> BatchEngine::submit(CompletionRequest request) {
  const int64_t n = int64_t(request.prompt.size());
  if (n == 0) throw Error("the prompt is empty");
  if (n >= options_.n_ctx)
    throw Error("the prompt has " + std::to_string(n) + " tokens but the context holds " +
                std::to_string(options_.n_ctx) + " (at least one position must stay free for the reply)");
  for (int32_t t : request.prompt)
    if (t < 0 || t >= model_.config().n_vocab)
      throw Error("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                  std::to_string(model_.config().n_vocab - 1) + ")");
  if (blocks_needed(request) > kv_blocks_.n_blocks())
    throw Error("the request needs " + std::to_string(blocks_needed(request) * options_.kv_block) +
                " KV positions but the pool holds " + std::to_string(kv_blocks_.n_blocks() * options_.kv_block));
  auto seq = std::make_shared<Sequence>();
  seq->request_ = std::move(request);
  seq->submitted_ = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) throw Error("the engine is shutting down");
    const size_t free_slots = slots_.size() - active_;
    if (queue_.size() >= free_slots + options_.max_queue)
      throw QueueFull("the request queue is full (" + std::to_string(options_.max_queue) + " waiting)");
    seq->id_ = next_id_++;
    queue_.push_back(seq);
  }
  wake_.notify_all();
  return seq;
}

BatchEngineStats BatchEngine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  BatchEngineStats s;
  s.queued = queue_.size();
  s.active = active_;
  s.kv_blocks = kv_blocks_.n_blocks();
  s.kv_blocks_in_use = kv_in_use_.load();
  s.kv_blocks_cached = kv_cached_.load();
  s.kv_block_size = options_.kv_block;
  s.kv_bytes = kv_pool_.bytes();
  s.steps = steps_;
  return s;
}

void BatchEngine::cancel_all() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& seq : queue_) seq->cancel();
    cancel_all_.store(true);
  }
  wake_.notify_all();
}

bool BatchEngine::wait_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  return idle_.wait_until(lock, deadline, [&] { return queue_.empty() && active_ == 0; });
}

void BatchEngine::update_kv_counts() {
  kv_in_use_.store(kv_blocks_.in_use());
  kv_cached_.store(kv_blocks_.cached());
}

// Blocks a request may fill: its prompt plus max_tokens (the whole context when unbounded).
int64_t BatchEngine::blocks_needed(const CompletionRequest& r) const {
  const int64_t gen = r.max_tokens < 0 ? options_.n_ctx : r.max_tokens;
  const int64_t positions = std::min<int64_t>(options_.n_ctx, int64_t(r.prompt.size()) + gen);
  return (positions + options_.kv_block - 1) / options_.kv_block;
}

void BatchEngine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty() || active_ > 0; });
      if (stop_) break;
    }
    admit();
    step();
    update_kv_counts();
  }
  // Shutting down: nothing more will run.
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& slot : slots_)
    if (slot->seq) {
      SequenceEvent ev;
      ev.kind = SequenceEvent::Kind::Finished;
      ev.finish_reason = "cancelled";
      ev.stats = slot->stats;
      slot->seq->push(std::move(ev));
      slot->seq.reset();
    }
  for (auto& seq : queue_) {
    SequenceEvent ev;
    ev.kind = SequenceEvent::Kind::Finished;
    ev.finish_reason = "cancelled";
    seq->push(std::move(ev));
  }
  queue_.clear();
  active_ = 0;
  idle_.notify_all();
}

// Moves waiting requests into free slots, in arrival order, as long as the pool can hold each one's
// prompt and max_tokens. A request starts on the published blocks of its longest cached prefix.
void BatchEngine::admit() {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t B = options_.kv_block;
  while (!queue_.empty()) {
    std::shared_ptr<Sequence> seq = queue_.front();
    if (seq->cancelled()) {
      queue_.pop_front();
      SequenceEvent ev;
      ev.kind = SequenceEvent::Kind::Finished;
      ev.finish_reason = "cancelled";
      seq->push(std::move(ev));
      continue;
    }
    Slot* free_slot = nullptr;
    for (auto& slot : slots_)
      if (!slot->seq) {
        free_slot = slot.get();
        break;
      }
    if (!free_slot) break;  // every slot is busy
    const std::vector<int32_t>& prompt = seq->request_.prompt;
    // The last prompt token always runs: its logits give the first reply token.
    std::vector<int32_t> shared = kv_blocks_.acquire_prefix(prompt, prompt.size() - 1);
    const int64_t need = std::max<int64_t>(0, blocks_needed(seq->request_) - int64_t(shared.size()));
    if (kv_blocks_.available() < kv_reserved_ + need) {
      kv_blocks_.release(shared);
      break;  // waits until running sequences give blocks back
    }
    queue_.pop_front();
    ++active_;
    Slot& s = *free_slot;
    const size_t reuse = shared.size() * size_t(B);
    s.seq = seq;
    s.cache.blocks() = std::move(shared);
    s.published = s.cache.blocks().size();
    s.reserved = need;
    kv_reserved_ += need;
    s.tokens.assign(prompt.begin(), prompt.begin() + long(reuse));
    s.todo.assign(prompt.begin() + long(reuse), prompt.end());
    s.sampler = std::make_unique<Sampler>(seq->request_.sampling);
    s.history = prompt;
    s.utf8 = Utf8Stream();
    s.stops = std::make_unique<StopMatcher>(seq->request_.stop);
    s.stats = SequenceStats();
    s.stats.prompt_tokens = int64_t(prompt.size());
    s.stats.cached_tokens = int64_t(reuse);
    s.started = false;
  }
}

void BatchEngine::finish(Slot& slot, const std::string& reason, const std::string& error) {
  const auto now = std::chrono::steady_clock::now();
  if (slot.stats.completion_tokens > 0) slot.stats.decode_ms = ms_between(slot.first_token, now);
  else slot.stats.ttft_ms = ms_between(slot.seq->submitted_, now);
  SequenceEvent ev;
  ev.kind = SequenceEvent::Kind::Finished;
  ev.finish_reason = reason;
  ev.error = error;
  ev.stats = slot.stats;
  const std::shared_ptr<Sequence> seq = std::move(slot.seq);
  slot.todo.clear();
  slot.sampler.reset();
  slot.stops.reset();
  // Its full blocks stay published (cached) for later prefixes; the rest return to the pool.
  kv_blocks_.release(slot.cache.blocks());
  slot.cache.blocks().clear();
  slot.tokens.clear();
  slot.published = 0;
  update_kv_counts();  // before the sequence counts as finished: stats() never shows its blocks after
  std::lock_guard<std::mutex> lock(mutex_);
  kv_reserved_ -= slot.reserved;
  slot.reserved = 0;
  --active_;
  // The end goes out only now, under the lock that submit() takes: a client that sees it may submit
  // at once and must find the slot free (with one slot and no queue, such a follow-up request was
  // answered 429 while this one still counted as active), and idleness never precedes it.
  seq->push(std::move(ev));
  if (active_ == 0 && queue_.empty()) idle_.notify_all();
}

// Emits the text held back (a split character, a possible stop string) when generation ends.
void BatchEngine::flush_text(Slot& slot) {
  const std::string tail = slot.stops->push(slot.utf8.flush()) + slot.stops->flush();
  if (tail.empty()) return;
  SequenceEvent ev;
  ev.token = TokenEvent{-1, tail, 0, {}};
  slot.seq->push(std::move(ev));
}

void BatchEngine::emit_token(Slot& slot, int32_t id, const float* logits) {
  const CompletionRequest& req = slot.seq->request_;
  const int64_t n_vocab = model_.config().n_vocab;
  const auto now = std::chrono::steady_clock::now();
  if (slot.stats.completion_tokens == 0) {
    slot.first_token = now;
    slot.stats.ttft_ms = ms_between(slot.seq->submitted_, now);
  }
  ++slot.stats.completion_tokens;
  slot.history.push_back(id);
  const TextTokenizer& tok = model_.tokenizer();

  if (tok.is_eog(id) && !req.ignore_eos) {
    // The end-of-generation token ends the text; its own text ("</s>", "<|im_end|>") is not output.
    flush_text(slot);
    finish(slot, "stop");
    return;
  }
  SequenceEvent ev;
  ev.token.id = id;
  // Only when asked: it is a pass over the whole vocabulary per token.
  ev.token.logprob = req.logprobs || req.n_logprobs > 0 ? token_logprob(logits, n_vocab, id) : 0.0f;
  if (req.n_logprobs > 0) ev.token.top = top_logprobs(logits, n_vocab, req.n_logprobs);
  ev.token.text = slot.stops->push(slot.utf8.push(tok.token_to_piece(id)));
  slot.seq->push(std::move(ev));
  if (slot.stops->stopped()) return finish(slot, "stop");
  const bool budget_spent = req.max_tokens >= 0 && slot.stats.completion_tokens >= req.max_tokens;
  const bool context_full = int64_t(slot.tokens.size()) + 1 >= options_.n_ctx;  // no position for `id`
  if (budget_spent || context_full) {
    flush_text(slot);
    return finish(slot, "length");
  }
  slot.todo.assign(1, id);
}

void BatchEngine::step() {
  if (cancel_all_.exchange(false))
    for (auto& slot : slots_)
      if (slot->seq) slot->seq->cancel();
  // Sequences whose client left are dropped before any work is spent on them.
  for (auto& slot : slots_)
    if (slot->seq && slot->seq->cancelled()) finish(*slot, "cancelled");

  // Decoding sequences first (one row each), then prompt chunks in arrival order with what is left.
  std::vector<Slot*> order;
  for (auto& slot : slots_)
    if (slot->seq) order.push_back(slot.get());
  if (order.empty()) return;
  std::stable_sort(order.begin(), order.end(), [](const Slot* a, const Slot* b) {
    const bool da = a->stats.completion_tokens > 0, db = b->stats.completion_tokens > 0;
    if (da != db) return da;
    return a->seq->id() < b->seq->id();
  });
  rows_.clear();
  std::vector<std::pair<Slot*, int64_t>> chunks;  // slot, tokens taken from its todo
  int64_t budget = options_.step_tokens;
  const auto now = std::chrono::steady_clock::now();
  for (Slot* s : order) {
    if (budget <= 0) break;
    const int64_t take = std::min<int64_t>(budget, int64_t(s->todo.size()));
    // Blocks for the positions this step writes (promised at admission, so always there).
    bool out_of_blocks = false;
    while (s->cache.capacity() < int64_t(s->tokens.size()) + take) {
      const int32_t id = kv_blocks_.allocate();
      if (id < 0) {
        out_of_blocks = true;
        break;
      }
      s->cache.blocks().push_back(id);
      if (s->reserved > 0) --s->reserved, --kv_reserved_;
    }
    if (out_of_blocks) {
      log_error("KV pool exhausted: a block reservation was not honoured");
      finish(*s, "error", "the KV cache pool is exhausted");
      continue;
    }
    const bool last = take == int64_t(s->todo.size());
    for (int64_t i = 0; i < take; ++i)
      rows_.push_back(BatchToken{s->todo[size_t(i)], int64_t(s->tokens.size()) + i, &s->cache, last && i == take - 1});
    chunks.emplace_back(s, take);
    budget -= take;
    if (!s->started) {
      s->started = true;
      s->stats.queue_ms = ms_between(s->seq->submitted_, now);
    }
  }
  try {
    transformer_.forward_rows(rows_.data(), int64_t(rows_.size()), logits_.data());
  } catch (const std::exception& e) {
    log_error(std::string("engine step failed: ") + e.what());
    for (auto& [s, take] : chunks) finish(*s, "error", e.what());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++steps_;
  }
  const int64_t n_vocab = model_.config().n_vocab;
  int64_t logit_row = 0;
  for (auto& [s, take] : chunks) {
    s->tokens.insert(s->tokens.end(), s->todo.begin(), s->todo.begin() + long(take));
    s->todo.erase(s->todo.begin(), s->todo.begin() + long(take));
    // Blocks now full (prompt or generated tokens) become findable by later requests.
    while ((s->published + 1) * size_t(options_.kv_block) <= s->tokens.size())
      kv_blocks_.publish(s->cache.blocks(), s->published++, s->tokens);
    if (!s->todo.empty()) continue;  // still prefilling
    const float* logits = logits_.data() + logit_row++ * n_vocab;
    TokenConstraint* constraint = s->seq->request_.constraint.get();
    bool masked = false;
    if (constraint) {
      mask_.assign(size_t(n_vocab), 0);
      masked = constraint->allowed_next(mask_);
    }
    const int32_t id = s->sampler->sample(logits, n_vocab, s->history, masked ? &mask_ : nullptr);
    if (id < 0) {
      finish(*s, "error", "the output constraint allows no token here");
      continue;
    }
    if (constraint) constraint->accept(id);
    emit_token(*s, id, logits);
    if (constraint && s->seq && constraint->complete()) {
      flush_text(*s);
      finish(*s, "stop");
    }
  }
}

}  // namespace chassis
