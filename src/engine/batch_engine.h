// Continuous batching: one engine thread advances every active sequence of one model per step, in
// one batched forward pass (decoding sequences contribute one token, prefilling ones a chunk of
// their prompt, so a long prompt never stalls running streams). Keys and values live in blocks of
// one pool shared by all sequences (KvBlockManager): a sequence holds only the blocks its tokens
// fill, and a request whose prompt starts with a prefix already computed — the same system prompt
// as a running request, an agent's previous turn — starts on those blocks, whole blocks at a time.
// A request is admitted when the pool can hold its prompt plus its max_tokens (so no running
// sequence ever runs out of blocks); until then it waits in the queue.
//
// The forward pass is row-invariant (see Transformer::forward_rows), so a request's tokens do not
// depend on what else runs: the same greedy output, and with a seed the same sampled output, alone
// or under load. Clients talk to the engine through plain structs; JSON stays in the server.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/kv_blocks.h"
#include "engine/sampler.h"
#include "engine/token_constraint.h"

namespace chassis {

struct CompletionRequest {
  std::vector<int32_t> prompt;
  int max_tokens = -1;  // < 0: until an end-of-generation token, a stop string or the context's end
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  bool logprobs = false;          // report each token's logprob (a log-softmax over the vocabulary)
  int n_logprobs = 0;             // most likely alternatives to report per token
  bool ignore_eos = false;
  // Restricts each next token (constrained decoding); null: unconstrained. Used by the engine
  // thread only, for this request only.
  std::shared_ptr<TokenConstraint> constraint;
};

struct SequenceStats {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens whose KV was reused from an earlier request
  int64_t completion_tokens = 0;
  double queue_ms = 0;   // submitted -> first evaluated
  double ttft_ms = 0;    // submitted -> first token
  double decode_ms = 0;  // first token -> finished
};

struct SequenceEvent {
  enum class Kind { Token, Finished };
  Kind kind = Kind::Token;
  TokenEvent token;           // Token: id, text (after stop strings), logprob, alternatives
  std::string finish_reason;  // Finished: "stop", "length", "cancelled" or "error"
  std::string error;          // Finished with "error": what went wrong
  SequenceStats stats;        // Finished: the totals
};

// Thrown by submit() when the waiting queue is full (the server answers 429).
class QueueFull : public Error {
 public:
  using Error::Error;
};

// The client's handle on one submitted request. Events are queued without bound so the engine
// never waits on a slow reader (a request's events are bounded by its max_tokens and the context).
class Sequence {
 public:
  uint64_t id() const { return id_; }
  // Blocks until an event is available (true) or the sequence has finished and every event was
  // taken (false). With a timeout, also returns false when it expires.
  bool next(SequenceEvent& ev);
  bool next_for(SequenceEvent& ev, std::chrono::milliseconds timeout);
  // Asks the engine to stop this sequence; it frees its slot at the next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class BatchEngine;
  void push(SequenceEvent ev);

  uint64_t id_ = 0;
  CompletionRequest request_;
  std::chrono::steady_clock::time_point submitted_;
  std::atomic<bool> cancelled_{false};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<SequenceEvent> events_;
  bool finished_ = false;
};

struct BatchEngineOptions {
  int n_slots = 4;          // sequences evaluated together
  int64_t n_ctx = 4096;     // most positions of one sequence
  int64_t kv_block = 16;    // positions per KV block (the unit of prefix sharing)
  int64_t kv_tokens = 0;    // positions in the shared KV pool; 0: n_slots * n_ctx
  bool kv_f32 = false;      // keys/values in f32 (exact, twice the memory) instead of f16
  int n_threads = 2;
  int64_t step_tokens = 256;  // most tokens evaluated per step (decode rows + prefill chunks)
  size_t max_queue = 64;      // waiting requests beyond the slots before submit() throws QueueFull
};

struct BatchEngineStats {
  size_t queued = 0;
  size_t active = 0;
  int64_t kv_blocks = 0;           // blocks in the pool
  int64_t kv_blocks_in_use = 0;    // referenced by running sequences (0 when idle: nothing leaked)
  int64_t kv_blocks_cached = 0;    // unreferenced, holding a reusable prefix
  int64_t kv_block_size = 0;
  uint64_t kv_bytes = 0;
  uint64_t steps = 0;
};

class BatchEngine {
 public:
  BatchEngine(const Model& model, const BatchEngineOptions& options);
  ~BatchEngine();  // cancels what is left and joins the engine thread
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  // Queues a request. Throws Error for a prompt that cannot run (empty, longer than the context,
  // a token outside the vocabulary) and QueueFull when too many are waiting.
  std::shared_ptr<Sequence> submit(CompletionRequest request);

  BatchEngineStats stats() const;
  int64_t n_ctx() const { return options_.n_ctx; }
  const Model& model() const { return model_; }
  // Cancels every queued and running sequence (at the next step).
  void cancel_all();
  // Waits until nothing is queued or active, or the deadline passes; true when idle.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);

 private:
  struct Slot;
  void loop();
  void admit();
  void step();
  void finish(Slot& slot, const std::string& reason, const std::string& error = {});
  void emit_token(Slot& slot, int32_t id, const float* logits);
  void flush_text(Slot& slot);

  const Model& model_;
  BatchEngineOptions options_;
  ThreadPool pool_;
  Transformer transformer_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<float> logits_;
  std::vector<BatchToken> rows_;
  std::vector<uint8_t> mask_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::shared_ptr<Sequence>> queue_;
  size_t active_ = 0;
  uint64_t steps_ = 0;
  uint64_t next_id_ = 1;
  bool stop_ = false;
  std::atomic<bool> cancel_all_{false};
  // Written by the engine thread after each step, read by stats() from any thread.
  std::atomic<int64_t> kv_in_use_{0}, kv_cached_{0};
  KvPool kv_pool_;
  KvBlockManager kv_blocks_;  // engine thread only
  int64_t kv_reserved_ = 0;   // blocks promised to admitted sequences but not yet allocated (engine thread)
  void update_kv_counts();
  int64_t blocks_needed(const CompletionRequest& r) const;
  std::thread thread_;
};

}  // namespace chassis
