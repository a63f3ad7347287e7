// Element-wise and row-wise operations of a transformer forward pass. Models call these, never
// SIMD directly; each has a plain scalar reference (kernels/ref/ops.cc) that later fast versions are
// tested against.
#pragma once
#include <cstdint>

namespace chassis {

// y = x / sqrt(mean(x^2) + eps) * w, for one row of n. w may be null (no scale).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

enum class RopeStyle { Normal, NeoX };  // Normal: rotate pairs (2i, 2i+1); NeoX: pairs (i, i + n_rot/2)

struct RopeParams {
  int n_rot = 0;              // leading dims of each head that are rotated
  float freq_base = 10000.f;
  float freq_scale = 1.f;     // 1/factor for linear scaling
  const float* freq_factors = nullptr;  // n_rot/2 divisors of each frequency (Llama-3 rope_freqs), or null
  RopeStyle style = RopeStyle::Normal;
  // YaRN (as ggml's rope): pair i's angle blends the interpolated (freq_scale) and the original angle
  // by ext_factor * ramp(i) (1 below corr_dims[0], 0 above corr_dims[1]); cos and sin are then scaled
  // by attn_factor, times 1 + 0.1 ln(1/freq_scale) when ext_factor != 0.
  float ext_factor = 0;
  float attn_factor = 1;
  float corr_dims[2] = {0, 0};
};

// Most rotated pairs a head may have (n_rot <= 2 * kMaxRopePairs; the config loaders check it).
constexpr int kMaxRopePairs = 512;

// Rotates n_head heads of head_dim values (one token's q or k) in place for position pos.
void rope(float* x, int n_head, int head_dim, int pos, const RopeParams& p);
// rope() in two steps, for several tensors at one position: the angles' cos and sin (n_rot/2 each:
// the costly part, libm's cos and sin), then any number of rotations by them. The same results.
void rope_angles(int pos, const RopeParams& p, float* cs, float* sn);
void rope_rotate(float* x, int n_head, int head_dim, const RopeParams& p, const float* cs, const float* sn);

// out[i] = x[i] as IEEE half (round to nearest even; f32_to_f16): what the f16 KV cache stores.
void f32_to_f16_row(const float* x, uint16_t* out, int64_t n);

// In place: x = softmax(x) over n values.
void softmax(float* x, int64_t n);

// out = silu(gate) * up
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// out = gelu_tanh(gate) * up, with gelu evaluated as llama.cpp does it on CPU: input and output
// rounded through f16 (its lookup table), so our activations match the reference bit for bit.
void geglu(const float* gate, const float* up, float* out, int64_t n);
// out = gelu_tanh(gate) * up in float32 throughout (transformers' gelu_pytorch_tanh).
void geglu_f32(const float* gate, const float* up, float* out, int64_t n);

// In place: x = cap * tanh(x / cap).
void softcap(float* x, int64_t n, float cap);

// Causal attention of one query head over cached keys/values (f16), for one token:
//   out[d] = sum_j softmax_j(scale * q.k_j (softcapped)) v_j[d],   j in [kv_begin, kv_end)
// k/v rows are found through KvRows (below), contiguous or paged.
struct AttentionParams {
  int head_dim;
  float scale;
  float softcap = 0.f;  // 0: none
  // The reference evaluates batches of 64 or more queries with a tiled kernel (f32 q, 64-key tiles,
  // f32 accumulation) and smaller ones key by key with an f16 accumulator; both are reproduced.
  bool tiled = false;
};

// Where one kv head's cached rows live. Position j's row starts at
//   base + table[j / block] * block_stride + (j % block) * stride
// A paged cache (blocks from a pool shared by sequences) has a table of block ids; a contiguous
// cache is a single block: table {0}, block >= every position.
struct KvRows {
  const uint16_t* base;
  const int32_t* table;
  int64_t block;         // positions per block
  int64_t block_stride;  // halfs from one block to the next
  int64_t stride;        // halfs from one position to the next within a block
  bool f32 = false;      // rows hold floats (an F32 cache; strides still count halfs)
};

// Visits rows in position order with no division per position.
class KvRowCursor {
 public:
  KvRowCursor(const KvRows& r, int64_t pos) : r_(r), blk_(pos / r.block), off_(pos % r.block) {}
  const uint16_t* row() {
    if (!block_) block_ = r_.base + r_.table[blk_] * r_.block_stride;
    return block_ + off_ * r_.stride;
  }
  void next() {
    if (++off_ == r_.block) {
      off_ = 0;
      ++blk_;
      block_ = nullptr;  // resolved on the next row(): the table may end here
    }
  }

 private:
  const KvRows& r_;
  int64_t blk_, off_;
  const uint16_t* block_ = nullptr;
};

// Dispatches on the rows' type: f16 rows follow llama.cpp's kernels (above); f32 rows (an F32 cache,
// llama.cpp's -ctk/-ctv f32) use f32 scores and an f32 accumulator.
void attend_one(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end, float* out,
                float* scores_scratch, const AttentionParams& p);

}  // namespace chassis
