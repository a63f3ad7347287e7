#include "models/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/cpu/attention_avx2.h"
#include "kernels/cpu/dot_avx2.h"
#include "kernels/cpu/ops_avx2.h"
#include "kernels/ops.h"
#include "kernels/quants.h"
#include "models/trace.h"

namespace chassis {

Transformer::Transformer(const ModelConfig& cfg, const ModelWeights& w, ThreadPool& pool, int64_t max_batch)
    : cfg_(cfg), w_(w), pool_(pool), max_batch_(std::max<int64_t>(1, max_batch)) {
  const int64_t B = max_batch_, E = cfg.n_embd, Q = cfg.n_embd_q(), KV = cfg.n_embd_kv();
  const int64_t F = cfg.is_moe() ? cfg.n_ff_exp : cfg.n_ff;
  x_.resize(B * E);
  xn_.resize(B * E);
  if (cfg.fused_qkv) qkv_.resize(B * (Q + 2 * KV));
  q_.resize(B * Q);
  k_.resize(B * KV);
  v_.resize(B * KV);
  attn_.resize(B * Q);
  o_.resize(B * E);
  gate_.resize(B * F * (cfg.fused_gate_up ? 2 : 1));
  up_.resize(B * F);
  act_.resize(B * F);
  if (cfg.is_moe()) {
    router_.resize(B * cfg.n_expert);
    route_expert_.resize(B * cfg.n_expert_used);
    route_weight_.resize(B * cfg.n_expert_used);
    expert_order_.resize(cfg.n_expert);
    expert_start_.resize(cfg.n_expert + 1);
    expert_rows_.resize(B * cfg.n_expert_used);
    expert_weights_.resize(B * cfg.n_expert_used);
    xe_.resize(B * E);
    ye_.resize(B * E);
  }
  if (w.token_embd.interleaved) embd_row_.resize(size_t(w.token_embd.row_stride()));
  rope_ = cfg.rope;
  if (w.rope_freqs) rope_.freq_factors = w.rope_freqs.data;
  else if (!cfg.rope_factors.empty()) rope_.freq_factors = cfg.rope_factors.data();
  rope_cos_.resize(B * (cfg.rope.n_rot / 2));
  rope_sin_.resize(B * (cfg.rope.n_rot / 2));
}

uint64_t Transformer::scratch_bytes() const {
  return (x_.size() + xn_.size() + qkv_.size() + q_.size() + k_.size() + v_.size() + rope_cos_.size() +
          rope_sin_.size() + attn_.size() + o_.size() +
          gate_.size() + up_.size() + act_.size() + scores_.size() + router_.size() + route_weight_.size() +
          xe_.size() + ye_.size() + expert_weights_.size()) * sizeof(float) +
         (route_expert_.size() + expert_order_.size()) * sizeof(int32_t) +
         (expert_start_.size() + expert_rows_.size()) * sizeof(int64_t);
}

void Transformer::trace(const char* name, int64_t il, const float* data, int64_t n, int64_t width) {
  // In a team, thread 0 traces; every call site is in or right after a step that ends in a barrier,
  // and a trace only reads.
  if (!tracer_ || pool_.team_index() != 0) return;
  const std::string full = il < 0 ? std::string(name) : "blk." + std::to_string(il) + "." + name;
  tracer_->tensor(full, data, n, width, pos_.empty() ? 0 : pos_[0]);
}

void Transformer::mul(const WeightMatrix& w, const float* x, int64_t n, float* y) {
  matmul(w, x, n, y, pool_, row_invariant_);
}

void Transformer::mul_group(std::initializer_list<MatmulTarget> targets, const float* x, int64_t n) {
  matmul_group(std::span<const MatmulTarget>(targets.begin(), targets.size()), x, n, pool_, row_invariant_);
}

void Transformer::check_rows(int64_t n) const {
  for (int64_t i = 0; i < n; ++i) {
    if (tokens_[i] < 0 || tokens_[i] >= cfg_.n_vocab)
      throw Error("forward: token id " + std::to_string(tokens_[i]) + " is outside the vocabulary (" +
                  std::to_string(cfg_.n_vocab) + ")");
    if (pos_[i] < 0 || pos_[i] >= caches_[i]->n_ctx())
      throw Error("forward: position " + std::to_string(pos_[i]) + " exceeds the context size " +
                  std::to_string(caches_[i]->n_ctx()));
    if (pos_[i] >= caches_[i]->capacity())
      throw Error("forward: position " + std::to_string(pos_[i]) + " has no KV block assigned");
  }
}

void Transformer::forward(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& cache, float* logits,
                          bool all_logits) {
  if (n <= 0) throw Error("forward: no tokens to evaluate");
  if (pos0 < 0 || pos0 + n > cache.n_ctx())
    throw Error("forward: positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + n - 1) +
                " exceed the context size " + std::to_string(cache.n_ctx()));
  row_invariant_ = false;
  for (int64_t done = 0; done < n; done += max_batch_) {
    const int64_t m = std::min(max_batch_, n - done);
    const bool last_chunk = done + m == n;
    tokens_.assign(tokens + done, tokens + done + m);
    pos_.resize(size_t(m));
    for (int64_t t = 0; t < m; ++t) pos_[t] = pos0 + done + t;
    caches_.assign(size_t(m), &cache);
    want_.assign(size_t(m), all_logits ? 1 : 0);
    if (last_chunk) want_.back() = 1;
    check_rows(m);
    float* out = all_logits ? logits + done * cfg_.n_vocab : (last_chunk ? logits : nullptr);
    forward_batch(m, out);
  }
}

void Transformer::forward_rows(const BatchToken* rows, int64_t n, float* logits) {
  if (n <= 0) throw Error("forward: no tokens to evaluate");
  row_invariant_ = true;
  for (int64_t done = 0; done < n; done += max_batch_) {
    const int64_t m = std::min(max_batch_, n - done);
    tokens_.resize(size_t(m));
    pos_.resize(size_t(m));
    caches_.resize(size_t(m));
    want_.resize(size_t(m));
    int64_t wanted = 0;
    for (int64_t t = 0; t < m; ++t) {
      const BatchToken& r = rows[done + t];
      tokens_[t] = r.token;
      pos_[t] = r.pos;
      caches_[t] = r.cache;
      want_[t] = r.logits ? 1 : 0;
      wanted += want_[t];
    }
    check_rows(m);
    forward_batch(m, wanted > 0 ? logits : nullptr);
    logits += wanted * cfg_.n_vocab;
  }
}

void Transformer::attention(int64_t il, int64_t n) {
  const ModelConfig& c = cfg_;
  const int64_t D = c.head_dim, Q = c.n_embd_q(), group = c.n_head / c.n_head_kv;
  const bool windowed = c.layer_uses_window(il);
  int64_t max_ctx = 0;  // scores_ holds one row of this many per thread (sized by forward_batch)
  for (int64_t t = 0; t < n; ++t) max_ctx = std::max(max_ctx, caches_[t]->n_ctx());
  // The reference tiles attention for batches of 64 or more queries. A row-invariant batch tiles
  // every row, a batch of one too: a tiled query's result depends only on its own keys (tiles sit at
  // fixed positions), so a row gets the same bits whatever shares its batch, and the batch kernel is
  // faster than key by key even for one row (BM_AttentionTiledBatch: 7 heads, one row, 512 keys
  // 15.0 us against attend_heads' 22.4).
  const bool tiled = row_invariant_ || n >= 64;
  AttentionParams ap{static_cast<int>(D), c.scale_q_first ? 1.0f : c.attn_scale, c.attn_softcap, tiled};
  const bool simd = use_simd_kernels();
  if (tiled && simd && attend_tiled_batch_supported(caches_[0]->k_rows(il, 0), ap)) return attention_batched(il, n, ap);
  // Jobs: (token, kv head, chunk of that kv head's query heads). Where a kernel takes several heads
  // at once (attend_heads_avx2, decode), the chunks are near-equal and of at most `hmax` heads;
  // otherwise each chunk is one head.
  const int hmax = simd ? attend_heads_max(caches_[0]->k_rows(il, 0), ap) : 0;
  const HeadChunks chunks(group, hmax);
  const int64_t per_token = c.n_head_kv * chunks.count;
  pool_.run([&](int ith, int nth) {
    float* scores = scores_.data() + ith * max_ctx;
    for (int64_t job = ith; job < n * per_token; job += nth) {
      const int64_t t = job / per_token, kvh = job % per_token / chunks.count;
      // Odd kv heads take their chunks in reverse: with two threads and chunks of unequal size
      // (7 heads: 3 + 4), the threads' shares then come out equal (3 + 4 and 4 + 3).
      const int64_t chunk = kvh % 2 ? chunks.count - 1 - job % chunks.count : job % chunks.count;
      const int64_t h0 = kvh * group + chunks.first(chunk), h1 = kvh * group + chunks.end(chunk);
      const int64_t pos = pos_[t];
      const KvCache& cache = *caches_[t];
      const KvRows k = cache.k_rows(il, kvh), v = cache.v_rows(il, kvh);
      // Causal: a query sees positions <= its own; with a window, only the last `sliding_window` of them.
      const int64_t begin = windowed ? std::max<int64_t>(0, pos - c.sliding_window + 1) : 0;
      // (attend_heads_avx2 declines a cache it does not take, e.g. an f32 one in a mixed batch.)
      if (hmax > 0 && attend_heads_avx2(int(h1 - h0), q_.data() + t * Q + h0 * D, D, k, v, begin, pos + 1,
                                        attn_.data() + t * Q + h0 * D, D, ap))
        continue;
      for (int64_t h = h0; h < h1; ++h) {
        const float* qh = q_.data() + t * Q + h * D;
        float* out = attn_.data() + t * Q + h * D;
        if (!simd || !attend_one_avx2(qh, k, v, begin, pos + 1, out, ap)) attend_one(qh, k, v, begin, pos + 1, out, scores, ap);
      }
    }
  });
}

void Transformer::attention_batched(int64_t il, int64_t n, const AttentionParams& ap) {
  const ModelConfig& c = cfg_;
  const int64_t D = c.head_dim, Q = c.n_embd_q(), group = c.n_head / c.n_head_kv;
  const bool windowed = c.layer_uses_window(il);
  // Runs of up to `rows` consecutive rows of one sequence's cache: a job is a run and a kv head, all
  // the group's query heads of those rows in one pass over the keys (a tile of K and V is unpacked
  // once a job). At least 32 queries a job where the group is small (BM_AttentionTiledBatch, one
  // head: 8 rows 296, 32 rows 392 M key-queries/s), and at least eight rows (Qwen2.5's 7 heads: 56);
  // jobs are then n / rows x kv heads, enough for every thread.
  const int64_t rows = std::clamp<int64_t>((32 + group - 1) / group, 8, 32);
  int64_t max_ctx = 0;  // scores_ holds one row of this many per thread (for the fallback)
  for (int64_t t = 0; t < n; ++t) max_ctx = std::max(max_ctx, caches_[t]->n_ctx());
  std::vector<int64_t> run_start;
  for (int64_t t = 0; t < n; ++t)
    if (run_start.empty() || caches_[t] != caches_[t - 1] || t - run_start.back() == rows) run_start.push_back(t);
  run_start.push_back(n);
  const int64_t n_runs = int64_t(run_start.size()) - 1;
  // Fewer runs x kv heads than threads (a decode step of one sequence; one kv head): the group's heads
  // in as many chunks as it takes to give every thread a job.
  const int64_t chunks = std::clamp<int64_t>((pool_.size() + n_runs * c.n_head_kv - 1) / (n_runs * c.n_head_kv), 1, group);
  const int64_t per_run = c.n_head_kv * chunks, n_jobs = n_runs * per_run;
  pool_.run([&](int ith, int nth) {
    std::vector<TiledQuery> queries;
    for (int64_t job = ith; job < n_jobs; job += nth) {
      const int64_t run = job / per_run, kvh = job % per_run / chunks, chunk = job % chunks;
      const int64_t h0 = kvh * group + chunk * group / chunks, h1 = kvh * group + (chunk + 1) * group / chunks;
      const KvCache& cache = *caches_[run_start[size_t(run)]];
      const KvRows k = cache.k_rows(il, kvh), v = cache.v_rows(il, kvh);
      queries.clear();
      for (int64_t t = run_start[size_t(run)]; t < run_start[size_t(run + 1)]; ++t) {
        const int64_t pos = pos_[t];
        // Causal: a query sees positions <= its own; with a window, only the last `sliding_window` of them.
        const int64_t begin = windowed ? std::max<int64_t>(0, pos - c.sliding_window + 1) : 0;
        for (int64_t h = h0; h < h1; ++h)
          queries.push_back({q_.data() + t * Q + h * D, attn_.data() + t * Q + h * D, begin, pos + 1});
      }
      if (attend_tiled_batch(queries, k, v, ap)) continue;
      // A cache the batch kernel does not take (an f32 one in a mixed batch): query by query.
      float* scores = scores_.data() + ith * max_ctx;
      for (const TiledQuery& q : queries) attend_one(q.q, k, v, q.kv_begin, q.kv_end, q.out, scores, ap);
    }
  });
}

void Transformer::forward_batch(int64_t n, float* logits) {
  int64_t max_ctx = 0;
  for (int64_t t = 0; t < n; ++t) max_ctx = std::max(max_ctx, caches_[t]->n_ctx());
  if (scores_.size() < size_t(pool_.size() * max_ctx)) scores_.resize(size_t(pool_.size() * max_ctx));
  // The whole pass is one team region (ThreadPool::run_team): each step is either done by every
  // thread together (products, attention, the gated activation) or by one in pool_.serial(), which
  // the others' next step waits for. Decode in one-process A/B runs against a region per step:
  // Qwen2.5-0.5B Q4_0 +2.0, +0.3, +4.9 %, Q8_0 +2.2 %; Llama-3.2-1B Q4_0 +0.5, -0.3, -1.9 %,
  // Q4_K_M +3.0, +0.0 % (its products are long enough that a region's cost hardly shows).
  pool_.run_team([&](int, int) { forward_layers(n, logits); });
}

void Transformer::forward_layers(int64_t n, float* logits) {
  pool_.serial([&] {
    embed(n);
    rope_angles_of_rows(n);
  });
  for (int64_t il = 0; il < cfg_.n_layer; ++il) {
    attention_block(il, n);  // x += [post_norm] Attn(RMSNorm(x))
    // After the last attention only the rows whose logits are wanted matter: drop the others, as
    // llama.cpp does (which also makes the remaining matmuls single-row, like the reference's).
    if (il == cfg_.n_layer - 1) {
      pool_.serial([&] {
        int64_t kept = 0;
        for (int64_t t = 0; t < n; ++t) {
          if (!want_[t]) continue;
          if (kept != t) {
            std::memmove(x_.data() + kept * cfg_.n_embd, x_.data() + t * cfg_.n_embd, size_t(cfg_.n_embd) * sizeof(float));
            pos_[kept] = pos_[t];
            caches_[kept] = caches_[t];
          }
          ++kept;
        }
        kept_ = kept;
      });
      pool_.settle();  // every thread reads kept_
      if (kept_ == 0) return;  // nothing further is observable: the caches are written
      n = kept_;
    }
    ffn_block(il, n);  // x += [post_norm] FFN(RMSNorm(x))
  }
  if (logits) output(n, logits);
}

void Transformer::embed(int64_t n) {
  const int64_t E = cfg_.n_embd;
  float* x = x_.data();  // x (n, E) = token_embd[tokens]
  // A row in its stored form (copied out of its group when the matrix is interleaved for the output
  // product it shares with a tied embedding).
  for (int64_t t = 0; t < n; ++t)
    dequantize_row(w_.token_embd.type, w_.token_embd.read_row(tokens_[t], embd_row_.data()), x + t * E, E);
  trace("inp_embd", -1, x, n, E);
  if (cfg_.scale_embeddings) {
    const float s = std::sqrt(float(E));
    for (int64_t i = 0; i < n * E; ++i) x[i] *= s;
    trace("inp_scaled", -1, x, n, E);
  }
}

void Transformer::rope_angles_of_rows(int64_t n) {
  const int64_t P = rope_.n_rot / 2;
  for (int64_t t = 0; t < n; ++t) rope_angles(int(pos_[t]), rope_, &rope_cos_[t * P], &rope_sin_[t * P]);
}

void Transformer::attention_block(int64_t il, int64_t n) {
  const ModelConfig& c = cfg_;
  const LayerWeights& L = w_.layers[il];
  const int64_t Q = c.n_embd_q(), KV = c.n_embd_kv();
  float* xn = xn_.data();

  norm_rows(L.attn_norm, "attn_norm", il, n);

  if (c.fused_qkv) mul(L.wqkv, xn, n, qkv_.data());  // qkv (n, Q + 2 KV): rows are q, then k, then v
  else mul_group({{&L.wq, 0, Q, q_.data()}, {&L.wk, 0, KV, k_.data()}, {&L.wv, 0, KV, v_.data()}}, xn, n);
  pool_.serial([&] { prepare_attention(il, n); });

  attention(il, n);
  trace("attn", il, attn_.data(), n, Q);

  mul(L.wo, attn_.data(), n, o_.data());  // o (n, E)
  add_to_residual(il, n, "attn_output", L.attn_post_norm, "attn_post_norm", "attn_residual");
}

void Transformer::prepare_attention(int64_t il, int64_t n) {
  const ModelConfig& c = cfg_;
  const LayerWeights& L = w_.layers[il];
  const int64_t Q = c.n_embd_q(), KV = c.n_embd_kv(), D = c.head_dim;
  if (c.fused_qkv) {
    const int64_t W = Q + 2 * KV;
    for (int64_t t = 0; t < n; ++t) {
      std::memcpy(q_.data() + t * Q, qkv_.data() + t * W, Q * sizeof(float));
      std::memcpy(k_.data() + t * KV, qkv_.data() + t * W + Q, KV * sizeof(float));
      std::memcpy(v_.data() + t * KV, qkv_.data() + t * W + Q + KV, KV * sizeof(float));
    }
  } else {
    // q (n, Q), k (n, KV), v (n, KV)
    for (int64_t t = 0; t < n; ++t) {
      if (L.bq) for (int64_t i = 0; i < Q; ++i) q_[t * Q + i] += L.bq.data[i];
      if (L.bk) for (int64_t i = 0; i < KV; ++i) k_[t * KV + i] += L.bk.data[i];
      if (L.bv) for (int64_t i = 0; i < KV; ++i) v_[t * KV + i] += L.bv.data[i];
    }
  }
  trace("q", il, q_.data(), n, Q);
  trace("k", il, k_.data(), n, KV);
  trace("v", il, v_.data(), n, KV);

  if (c.qk_norm) {  // per-head RMSNorm over head_dim, before rope
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < c.n_head; ++h) rms_norm(&q_[t * Q + h * D], L.q_norm.data, &q_[t * Q + h * D], D, c.rms_eps);
      for (int64_t h = 0; h < c.n_head_kv; ++h) rms_norm(&k_[t * KV + h * D], L.k_norm.data, &k_[t * KV + h * D], D, c.rms_eps);
    }
    trace("q_norm", il, q_.data(), n, Q);
    trace("k_norm", il, k_.data(), n, KV);
  }

  const auto rotate = use_simd_kernels() ? rope_rotate_avx2 : rope_rotate;  // bit-identical; see kernels/ref/elementwise.h
  const auto to_f16 = use_simd_kernels() ? f32_to_f16_row_avx2 : f32_to_f16_row;  // bit-identical
  const int64_t P = rope_.n_rot / 2;
  for (int64_t t = 0; t < n; ++t) {
    rotate(&q_[t * Q], int(c.n_head), int(D), rope_, &rope_cos_[t * P], &rope_sin_[t * P]);
    rotate(&k_[t * KV], int(c.n_head_kv), int(D), rope_, &rope_cos_[t * P], &rope_sin_[t * P]);
    // store this token's k and v at its position, one kv head at a time
    for (int64_t h = 0; h < c.n_head_kv; ++h) {
      uint16_t* kc = caches_[t]->k(il, pos_[t], h);
      uint16_t* vc = caches_[t]->v(il, pos_[t], h);
      const float* kh = &k_[t * KV + h * D];
      const float* vh = &v_[t * KV + h * D];
      if (caches_[t]->f32()) {
        std::memcpy(kc, kh, size_t(D) * sizeof(float));
        std::memcpy(vc, vh, size_t(D) * sizeof(float));
      } else {
        to_f16(kh, kc, D);
        to_f16(vh, vc, D);
      }
    }
  }
  trace("q_rope", il, q_.data(), n, Q);
  trace("k_rope", il, k_.data(), n, KV);
  if (c.scale_q_first) {
    for (int64_t i = 0; i < n * Q; ++i) q_[i] *= c.attn_scale;
    trace("q_scaled", il, q_.data(), n, Q);
  }
}

void Transformer::norm_rows(const VectorWeight& weight, const char* name, int64_t il, int64_t n) {
  // xn (n, E) = RMSNorm(x) * weight: one thread's step
  const int64_t E = cfg_.n_embd;
  pool_.serial([&] {
    for (int64_t t = 0; t < n; ++t) rms_norm(&x_[t * E], weight.data, &xn_[t * E], E, cfg_.rms_eps);
    trace(name, il, xn_.data(), n, E);
  });
}

void Transformer::add_to_residual(int64_t il, int64_t n, const char* product_name, const VectorWeight& post_norm,
                                  const char* norm_name, const char* out_name) {
  // x (n, E) += [post_norm] o: one thread's step
  const int64_t E = cfg_.n_embd;
  pool_.serial([&] {
    if (product_name) trace(product_name, il, o_.data(), n, E);
    if (cfg_.post_norms) {
      for (int64_t t = 0; t < n; ++t) rms_norm(&o_[t * E], post_norm.data, &o_[t * E], E, cfg_.rms_eps);
      trace(norm_name, il, o_.data(), n, E);
    }
    for (int64_t i = 0; i < n * E; ++i) x_[i] += o_[i];
    trace(out_name, il, x_.data(), n, E);
  });
}

void Transformer::gated_activation(const float* gate, const float* up, int64_t stride, int64_t n, int64_t width) {
  // act (n, width) = act(gate) * up. Whole rows per thread: the reference's exp variant depends on an
  // element's place in its row. (Splitting a decode row at a multiple of 8 between the threads would
  // keep every variant, but measured 4 % slower on Qwen2.5-0.5B Q4_0: each thread then reads half of
  // its gate and up from the other's cache.)
  const ModelConfig& c = cfg_;
  const auto swiglu_fn = use_simd_kernels() ? swiglu_avx2 : swiglu;  // bit-identical
  pool_.parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      if (c.ffn_act == FfnActivation::SiLU) swiglu_fn(gate + t * stride, up + t * stride, &act_[t * width], width);
      else if (c.ffn_act == FfnActivation::GeluTanh) geglu(gate + t * stride, up + t * stride, &act_[t * width], width);
      else geglu_f32(gate + t * stride, up + t * stride, &act_[t * width], width);
    }
  });
}

void Transformer::ffn_block(int64_t il, int64_t n) {
  const ModelConfig& c = cfg_;
  const LayerWeights& L = w_.layers[il];
  const int64_t F = c.n_ff;
  float* xn = xn_.data();

  norm_rows(L.ffn_norm, "ffn_norm", il, n);
  if (c.is_moe()) {
    moe_ffn(il, n);
    add_to_residual(il, n, nullptr, L.ffn_post_norm, "ffn_post_norm", "l_out");
    return;
  }
  if (c.fused_gate_up) {
    mul(L.ffn_up, xn, n, gate_.data());  // (n, 2F): gate | up
    gated_activation(gate_.data(), gate_.data() + F, 2 * F, n, F);
  } else {
    // gate (n, F), up (n, F)
    mul_group({{&L.ffn_gate, 0, F, gate_.data()}, {&L.ffn_up, 0, F, up_.data()}}, xn, n);
    gated_activation(gate_.data(), up_.data(), F, n, F);
  }
  trace("ffn_act", il, act_.data(), n, F);
  mul(L.ffn_down, act_.data(), n, o_.data());  // (n, E)
  add_to_residual(il, n, "ffn_out", L.ffn_post_norm, "ffn_post_norm", "l_out");
}

// Mixture of experts, as Mixtral / Qwen3-MoE (and llama.cpp's build_moe_ffn) evaluate it:
//   p = softmax(W_router xn)                                   (n, X)
//   S = the n_expert_used largest p; w_s = p_s (/ sum_S p_s when expert_weights_norm)
//   o = sum_{s in S, by expert index} w_s * down_s(act(gate_s xn) * up_s xn)
// Each expert runs once over the rows routed to it, so prefill reads an expert's weights once.
void Transformer::moe_ffn(int64_t il, int64_t n) {
  const ModelConfig& c = cfg_;
  const LayerWeights& L = w_.layers[il];
  const int64_t E = c.n_embd, X = c.n_expert, F = c.n_ff_exp;

  mul(L.ffn_gate_inp, xn_.data(), n, router_.data());  // (n, X)
  pool_.serial([&] { route_experts(il, n); });
  pool_.settle();  // every thread reads the routes

  for (int32_t e = 0; e < X; ++e) {
    const int64_t begin = e == 0 ? 0 : expert_start_[e - 1], m = expert_start_[e] - begin;
    if (m == 0) continue;
    const int64_t* rows = &expert_rows_[begin];
    const float* weights = &expert_weights_[begin];
    pool_.serial([&] {
      for (int64_t i = 0; i < m; ++i)  // xe (m, E): the rows routed to expert e
        std::memcpy(&xe_[i * E], &xn_[rows[i] * E], size_t(E) * sizeof(float));
    });
    // gate (m, F), up (m, F)
    mul_group({{&L.ffn_gate_exps[e], 0, F, gate_.data()}, {&L.ffn_up_exps[e], 0, F, up_.data()}}, xe_.data(), m);
    gated_activation(gate_.data(), up_.data(), F, m, F);
    mul(L.ffn_down_exps[e], act_.data(), m, ye_.data());   // (m, E)
    pool_.serial([&] {
      for (int64_t i = 0; i < m; ++i) {
        float* o = &o_[rows[i] * E];
        const float* y = &ye_[i * E];
        const float wgt = weights[i];
        for (int64_t j = 0; j < E; ++j) o[j] += wgt * y[j];
      }
    });
  }
  pool_.serial([&] { trace("ffn_moe_out", il, o_.data(), n, E); });
}

// The router's choice for each row (p = softmax(W_router xn) in router_), grouped by expert:
// expert_start_/expert_rows_/expert_weights_; o_ cleared for the experts' sums.
void Transformer::route_experts(int64_t il, int64_t n) {
  const ModelConfig& c = cfg_;
  const int64_t E = c.n_embd, X = c.n_expert, K = c.n_expert_used;
  trace("ffn_moe_logits", il, router_.data(), n, X);
  std::vector<int32_t>& order = expert_order_;
  for (int64_t t = 0; t < n; ++t) {
    float* p = &router_[t * X];
    softmax(p, X);
    for (int32_t e = 0; e < X; ++e) order[e] = e;
    // The K most probable experts; among equal probabilities the lower index, as torch.topk.
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += p[order[k]];
    for (int64_t k = 0; k < K; ++k) {
      route_expert_[t * K + k] = order[k];
      route_weight_[t * K + k] = c.expert_weights_norm ? p[order[k]] / sum : p[order[k]];
    }
  }
  trace("ffn_moe_probs", il, router_.data(), n, X);

  // The routes grouped by expert in one counting pass; each expert's stay in (token, slot) order.
  std::fill(expert_start_.begin(), expert_start_.end(), 0);
  for (int64_t r = 0; r < n * K; ++r) ++expert_start_[size_t(route_expert_[r]) + 1];
  for (int32_t e = 0; e < X; ++e) expert_start_[e + 1] += expert_start_[e];
  for (int64_t t = 0, r = 0; t < n; ++t)
    for (int64_t k = 0; k < K; ++k, ++r) {
      const int64_t slot = expert_start_[route_expert_[r]]++;
      expert_rows_[slot] = t;
      expert_weights_[slot] = route_weight_[r];
    }
  // (Each start has moved to its expert's end, which is the next expert's start.)

  std::fill(o_.begin(), o_.begin() + n * E, 0.0f);
}

void Transformer::output(int64_t n, float* logits) {
  norm_rows(w_.output_norm, "result_norm", -1, n);
  mul(w_.output, xn_.data(), n, logits);  // logits (n, n_vocab)
  pool_.serial([&] {
    if (cfg_.final_softcap > 0) softcap(logits, n * cfg_.n_vocab, cfg_.final_softcap);
    trace("result_output", -1, logits, n, cfg_.n_vocab);
  });
}

}  // namespace chassis
