#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/avx2_util.h"  // kPrefetchAhead
#include "kernels/cpu/dot_avx2.h"
#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/ops_avx2.h"
#include "kernels/interleave.h"
#include "kernels/quants.h"

namespace chassis {
namespace {

// One activation row encoded as the kernels read it (see tiled_act_type: F16 weights read the
// f16-rounded values widened back to f32).
void encode_activation(DType act_type, DType vec_dot_type, const float* x, uint8_t* out, int64_t n) {
  if (act_type == vec_dot_type) {
    if (!use_simd_kernels() || !quantize_row_avx2(act_type, x, out, n)) quantize_row(act_type, x, out, n);
    return;
  }
  if (act_type == DType::F32 && vec_dot_type == DType::F16 && use_simd_kernels()) {
    round_f16_avx2(x, reinterpret_cast<float*>(out), n);
    return;
  }
  thread_local std::vector<uint8_t> rounded;
  rounded.resize(size_t(row_bytes(vec_dot_type, n)));
  quantize_row(vec_dot_type, x, rounded.data(), n);
  dequantize_row(vec_dot_type, rounded.data(), reinterpret_cast<float*>(out), n);
}

std::atomic<bool> g_tiles_enabled{true};

}  // namespace

void set_matmul_tiles_enabled(bool on) { g_tiles_enabled.store(on); }

bool matmul_prefers_interleaved(DType t) {
  return can_interleave(t) && use_simd_kernels() && has_interleaved_tiles_avx2(t);
}

const uint8_t* WeightMatrix::read_row(int64_t r, uint8_t* scratch) const {
  if (!interleaved) return row(r);
  deinterleave_row(type, data, n_in, r, scratch);
  return scratch;
}

namespace {

// How one product of a group reads its activations: the encoded copy (one per distinct encoding in
// the group) and, where its tiles want them, the activation blocks' precomputed sums.
struct ActEncoding {
  DType act_type;
  DType vec_dot_type;
  ActSums sums_kind;
  int64_t act_row = 0;      // bytes per encoded token
  int64_t sums_stride = 0;  // int32 per token
  size_t act_offset = 0;    // into the group's activation scratch
  size_t sums_offset = 0;   // into the group's sums scratch
  bool same_as(const ActEncoding& o) const {
    return act_type == o.act_type && vec_dot_type == o.vec_dot_type && sums_kind == o.sums_kind;
  }
};

// Encoded activations start on a cache line: the F16 kernels' 32-byte loads then never straddle
// two lines (a split load costs twice; unaligned heap buffers split half of them).
constexpr size_t kActAlign = 64;
// The least weight bytes a thread takes from its range at once (see matmul_group).
constexpr int64_t kMinTakeBytes = int64_t(32) << 10;
uint8_t* align_up(uint8_t* p) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + kActAlign - 1) & ~uintptr_t(kActAlign - 1));
}

// One product of a group as the tiles run it: its rows in units handed out from one counter.
struct TilePlan {
  const MatmulTarget* target;
  bool interleaved_tiles = false;
  int encoding = 0;
  int64_t unit_rows = 0;   // rows per unit (the last unit may be shorter)
  int64_t first_unit = 0;  // index of this product's first unit in the group's counter
  int64_t n_units = 0;
};

// Rows [b, e) of plan's product (relative to its row_begin), every token.
void run_tile_chunk(const TilePlan& plan, const ActEncoding& enc, const uint8_t* act, const int32_t* sums,
                    int64_t n_tok, bool row_invariant, int64_t b, int64_t e) {
  const MatmulTarget& tg = *plan.target;
  const WeightMatrix& w = *tg.w;
  const int64_t n_rows = tg.row_end - tg.row_begin;
  const int64_t group_bytes = plan.interleaved_tiles ? interleaved_group_bytes(w.type, w.n_in) : 0;
  // Each token's place in the batch picks the reference's summation variant (see dot_variant).
  const int64_t batch = row_invariant ? 1 : n_tok;
  auto place = [&](int64_t t) { return row_invariant ? 0 : t; };
  // Consecutive tokens with the same variant form one tile problem.
  for (int64_t t0 = 0; t0 < n_tok;) {
    const DotVariant v = dot_variant(w.n_in, batch, place(t0));
    int64_t t1 = t0 + 1;
    while (t1 < n_tok) {
      const DotVariant v1 = dot_variant(w.n_in, batch, place(t1));
      if (v1.tiny_blas != v.tiny_blas || v1.repack_gemm != v.repack_gemm) break;
      ++t1;
    }
    TileProblem p;
    p.w = plan.interleaved_tiles ? w.data + (tg.row_begin + b) / kInterleavedRows * group_bytes : w.row(tg.row_begin + b);
    p.w_stride = plan.interleaved_tiles ? group_bytes : w.row_stride();
    p.n_rows = e - b;
    p.act = act + t0 * enc.act_row;
    p.act_stride = enc.act_row;
    p.n_tok = t1 - t0;
    p.n = w.n_in;
    p.y = tg.y + t0 * n_rows + b;
    p.y_stride = n_rows;
    p.variant = v;
    p.act_sums = sums + t0 * enc.sums_stride;
    p.act_sums_stride = enc.sums_stride;
    if (plan.interleaved_tiles) matmul_interleaved_avx2(w.type, p);
    else matmul_tiles_avx2(w.type, p);
    t0 = t1;
  }
}

// The first bytes of a take's rows, all requested at once. Why: the tiles prefetch kPrefetchAhead
// (6 KiB) ahead of the block they read, which keeps a stream going (and runs on into the rows that
// follow), but the first 6 KiB of a stream that starts cold (a thread's first take of a product, a
// stolen range) would otherwise arrive one demand miss at a time. A product of Qwen2.5-0.5B's
// attention is 80-600 KiB, two or three such starts. Decode (chassis bench --ab, eight runs over
// Qwen2.5-0.5B Q4_0/Q8_0/Q4_K_M and Llama-3.2-1B Q4_0/Q4_K_M): +0.0 to +2.8 %, median +0.8 %.
void prefetch_take_start(const TilePlan& plan, int64_t b, int64_t e) {
  const WeightMatrix& w = *plan.target->w;
  const int64_t r0 = plan.target->row_begin + b;
  const uint8_t* start = plan.interleaved_tiles ? w.data + r0 / kInterleavedRows * interleaved_group_bytes(w.type, w.n_in)
                                                : w.row(r0);
  const int64_t bytes = std::min<int64_t>(avx2::kPrefetchAhead, (e - b) * w.row_stride());
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(start + o, 0, 3);
}

// The products without tiles: one dot product per (row, token), rows split across the threads.
void run_dot_path(const MatmulTarget& tg, const uint8_t* act, int64_t act_row, int64_t n_tok, bool row_invariant,
                  bool simd, ThreadPool& pool) {
  const WeightMatrix& w = *tg.w;
  const int64_t n_rows = tg.row_end - tg.row_begin;
  const int64_t batch = row_invariant ? 1 : n_tok;
  pool.parallel_for(n_rows, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> scratch(w.interleaved ? size_t(w.row_stride()) : 0);
    for (int64_t r = b; r < e; ++r) {
      const uint8_t* wr = w.read_row(tg.row_begin + r, scratch.data());
      for (int64_t t = 0; t < n_tok; ++t) {
        const int64_t place = row_invariant ? 0 : t;
        float& out = tg.y[t * n_rows + r];
        if (!simd || !vec_dot_avx2(w.type, wr, act + t * act_row, w.n_in, batch, place, &out))
          out = vec_dot(w.type, wr, act + t * act_row, w.n_in, batch, place);
      }
    }
  });
}

}  // namespace

void matmul_group(std::span<const MatmulTarget> targets, const float* x, int64_t n_tok, ThreadPool& pool,
                  bool row_invariant) {
  if (targets.empty() || n_tok <= 0) return;
  // The SIMD kernels give bit-identical results, so they replace the reference whenever they exist.
  const bool simd = use_simd_kernels();
  const bool tiles_on = simd && g_tiles_enabled.load(std::memory_order_relaxed);
  const int64_t n_in = targets[0].w->n_in;

  // Each product's encoding of the activations, shared by the products that read the same one.
  std::vector<ActEncoding> encodings;
  std::vector<TilePlan> plans;
  std::vector<std::pair<const MatmulTarget*, int>> dot_targets;  // (target, encoding)
  size_t act_bytes = 0, sums_count = 0;
  for (const MatmulTarget& tg : targets) {
    const WeightMatrix& w = *tg.w;
    if (w.n_in != n_in) throw Error("matmul_group: the products do not share one input width");
    // Interleaved weights are read by their own tiles, in whole groups of eight rows; anything else
    // (tiles off, a row range that splits a group) reads rows copied out of their groups, one dot
    // product at a time.
    const bool whole_groups = tg.row_begin % kInterleavedRows == 0 && (tg.row_end - tg.row_begin) % kInterleavedRows == 0;
    const bool tiled = tiles_on && (w.interleaved ? whole_groups && has_interleaved_tiles_avx2(w.type) : has_tiled_avx2(w.type));
    const bool interleaved_tiles = tiled && w.interleaved;
    ActEncoding enc;
    enc.vec_dot_type = dtype_info(w.type).vec_dot_type;
    enc.act_type = tiled ? tiled_act_type(w.type) : enc.vec_dot_type;
    enc.sums_kind = tiled ? tiled_act_sums(w.type, interleaved_tiles) : ActSums::kNone;
    int index = 0;
    while (index < int(encodings.size()) && !encodings[index].same_as(enc)) ++index;
    if (index == int(encodings.size())) {
      enc.act_row = row_bytes(enc.act_type, n_in);
      enc.sums_stride = (n_in / QK) * act_sums_per_block(enc.sums_kind);
      enc.act_offset = act_bytes;
      enc.sums_offset = sums_count;
      act_bytes += size_t(n_tok * enc.act_row + kActAlign - 1) / kActAlign * kActAlign;
      sums_count += size_t(n_tok * enc.sums_stride);
      encodings.push_back(enc);
    }
    if (!tiled) {
      dot_targets.emplace_back(&tg, index);
      continue;
    }
    TilePlan plan;
    plan.target = &tg;
    plan.interleaved_tiles = interleaved_tiles;
    plan.encoding = index;
    plans.push_back(plan);
  }

  // Scratch reused across calls on this thread. (A thread_local is not captured by the lambdas
  // below: take its pointer on this thread.) A team (ThreadPool::run_team) runs this function on
  // every thread: for one row each thread encodes its own copy, since a barrier costs more than the
  // row (~0.2 us); for a batch the threads share thread 0's scratch and split the rows (a copy each
  // would read all of x across the cores: prefill of 128 rows ran 5 % slower).
  const bool shared = pool.in_team() && n_tok > 1;
  struct Scratch {
    uint8_t* act = nullptr;
    int32_t* sums = nullptr;
  } mine;
  if (!shared || pool.team_index() == 0) {
    thread_local std::vector<uint8_t> act_storage;
    thread_local std::vector<int32_t> sums_storage;
    if (act_storage.size() < act_bytes + kActAlign) act_storage.resize(act_bytes + kActAlign);
    if (sums_storage.size() < sums_count) sums_storage.resize(sums_count);
    mine = {align_up(act_storage.data()), sums_storage.data()};
  }
  const Scratch scratch = shared ? *static_cast<const Scratch*>(pool.broadcast(&mine)) : mine;
  uint8_t* act = scratch.act;
  int32_t* sums = scratch.sums;
  auto encode = [&](int64_t b, int64_t e) {
    for (const ActEncoding& enc : encodings)
      for (int64_t t = b; t < e; ++t) {
        uint8_t* row = act + enc.act_offset + t * enc.act_row;
        encode_activation(enc.act_type, enc.vec_dot_type, x + t * n_in, row, n_in);
        if (enc.sums_kind != ActSums::kNone)
          compute_act_sums(enc.sums_kind, row, n_in / QK, sums + enc.sums_offset + t * enc.sums_stride);
      }
  };
  if (pool.in_team() && !shared) {
    pool.settle();  // x may be a serial step's output
    encode(0, n_tok);
  } else {
    pool.parallel_for(n_tok, encode);
  }

  // Every tiled product's rows in one parallel region, in the group's order: a thread done with one
  // product's rows goes on to the next product's. Rows go out in units (a multiple of the tiles'
  // height) by ThreadPool::parallel_for_stealing: each thread streams its own contiguous share and
  // steals from another's back end only when done, so the thread that finishes first waits for one
  // unit at most. (Units handed out from one shared counter restarted each thread's memory stream at
  // every take: the matrices of a Qwen2.5-0.5B layer streamed 8-30 % slower, bench_kernels-style,
  // and the model decoded 4 % slower.)
  int64_t total_units = 0;
  for (TilePlan& plan : plans) {
    const int64_t n_rows = plan.target->row_end - plan.target->row_begin;
    plan.unit_rows = tiled_chunk_rows(plan.target->w->type, n_tok);
    plan.n_units = (n_rows + plan.unit_rows - 1) / plan.unit_rows;
    plan.first_unit = total_units;
    total_units += plan.n_units;
  }
  // Units [u0, u1), across the products they span.
  auto run_units = [&](int64_t u0, int64_t u1) {
    size_t k = 0;
    for (int64_t u = u0; u < u1;) {
      while (u >= plans[k].first_unit + plans[k].n_units) ++k;
      const TilePlan& plan = plans[k];
      const ActEncoding& enc = encodings[size_t(plan.encoding)];
      const int64_t n_rows = plan.target->row_end - plan.target->row_begin;
      const int64_t end = std::min(u1, plan.first_unit + plan.n_units);
      const int64_t b = (u - plan.first_unit) * plan.unit_rows, e = std::min(n_rows, (end - plan.first_unit) * plan.unit_rows);
      if (u == u0) prefetch_take_start(plan, b, e);
      run_tile_chunk(plan, enc, act + enc.act_offset, sums + enc.sums_offset, n_tok, row_invariant, b, e);
      u = end;
    }
  };
  // Each take costs a compare-and-swap and the call chain down to the tile, while a unit of an
  // 896-wide Q4_0 matrix (16 rows, 8 KiB) streams in ~0.25 us: the single-unit takes that ended a
  // thread's range paid that cost for little work. Takes of at least 32 KiB of weights (sized by the group's
  // first product): Qwen2.5-0.5B decode +1.5-3.6 % (Q4_0), +1.1-4.1 % (Q8_0) in one-process A/B runs
  // (chassis bench --ab; 16 KiB +0.5 %, 64 KiB +1.7 %, 128 KiB +1.0 % on Q4_0).
  int64_t min_take = 1;
  if (!plans.empty()) {
    const int64_t unit_bytes = plans[0].unit_rows * plans[0].target->w->row_stride() * n_tok;
    min_take = std::max<int64_t>(1, kMinTakeBytes / std::max<int64_t>(1, unit_bytes));
  }
  pool.parallel_for_stealing(total_units, run_units, min_take);
  for (const auto& [tg, index] : dot_targets)
    run_dot_path(*tg, act + encodings[size_t(index)].act_offset, encodings[size_t(index)].act_row, n_tok,
                 row_invariant, simd, pool);
}

void matmul_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool, bool row_invariant) {
  const MatmulTarget target{&w, row_begin, row_end, y};
  matmul_group(std::span<const MatmulTarget>(&target, 1), x, n_tok, pool, row_invariant);
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, bool row_invariant) {
  matmul_rows(w, 0, w.n_out, x, n_tok, y, pool, row_invariant);
}

}  // namespace chassis
