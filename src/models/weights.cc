#include "models/weights.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "io/tensor_source.h"
#include "kernels/interleave.h"
#include "kernels/quants.h"

namespace chassis {
namespace {

std::string shape_str(const std::vector<int64_t>& ne) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ne.size(); ++i) os << (i ? ", " : "") << ne[i];
  os << "]";
  return os.str();
}

class Binder {
 public:
  Binder(const TensorSource& f, ModelWeights& w) : f_(f), w_(w) {}

  std::optional<TensorRef> find(const std::string& name, bool required) {
    std::optional<TensorRef> t = f_.find(name);
    if (!t && required) throw Error(f_.label() + ": missing tensor '" + name + "'");
    return t;
  }

  void check_shape(const TensorRef& t, std::vector<int64_t> want) {
    std::vector<int64_t> have = t.ne;
    while (have.size() > want.size() && have.back() == 1) have.pop_back();
    if (have != want)
      throw Error(f_.label() + ": tensor '" + t.name + "' has shape " + shape_str(t.ne) + ", expected " +
                  shape_str(want) + " for this " + cfg_arch_ + " configuration");
  }

  WeightMatrix matrix(const std::string& name, int64_t n_in, int64_t n_out, bool required = true) {
    const std::optional<TensorRef> t = find(name, required);
    if (!t) return {};
    check_shape(*t, {n_in, n_out});
    account(*t);
    return WeightMatrix{t->type, t->data, n_in, n_out};
  }

  VectorWeight vec(const std::string& name, int64_t n, bool required = true) {
    const std::optional<TensorRef> t = find(name, required);
    if (!t) return {};
    check_shape(*t, {n});
    account(*t);
    // Copied even when stored as f32: a decode step reads every norm and bias, and each read of the
    // mapping would fault the file's pages around it back in after pack_weights released them (with
    // the page cache's large folios, up to 4 MiB a vector: Qwen2.5-0.5B Q8_0 ran 62 MiB above its
    // packed weights).
    VectorWeight v;
    v.owned = std::make_shared<std::vector<float>>(n);
    dequantize_row(t->type, t->data, v.owned->data(), n);
    v.data = v.owned->data();
    return v;
  }

  // A layer's experts: one 3-D tensor `<base>_exps.weight` (n_in, n_out, n_expert) as llama.cpp writes
  // them, each expert a slice; or one 2-D tensor per expert `<base>.<e>.weight` (llama.cpp's older
  // split layout, and how a Hugging Face folder's experts arrive).
  std::vector<WeightMatrix> experts(const std::string& base, int64_t n_in, int64_t n_out, int64_t n_expert) {
    std::vector<WeightMatrix> out;
    if (const std::optional<TensorRef> t = f_.find(base + "_exps.weight")) {
      check_shape(*t, {n_in, n_out, n_expert});
      account(*t);
      w_.n_expert_bytes += t->n_bytes;
      const WeightMatrix first{t->type, t->data, n_in, n_out};
      for (int64_t e = 0; e < n_expert; ++e)
        out.push_back(WeightMatrix{t->type, t->data + e * n_out * first.row_stride(), n_in, n_out});
      return out;
    }
    for (int64_t e = 0; e < n_expert; ++e) {
      const std::string name = base + "." + std::to_string(e) + ".weight";
      if (e == 0 && !f_.find(name)) throw Error(f_.label() + ": missing tensor '" + base + "_exps.weight'");
      out.push_back(matrix(name, n_in, n_out));
      w_.n_expert_bytes += uint64_t(out.back().row_stride() * n_out);
    }
    return out;
  }

  // An RMSNorm scale; Gemma's HF checkpoints store w where the norm multiplies by (1 + w).
  VectorWeight norm(const std::string& name, int64_t n, float offset) {
    VectorWeight v = vec(name, n);
    for (float& x : *v.owned) x += offset;
    return v;
  }

  void set_arch(const std::string& a) { cfg_arch_ = a; }

 private:
  void account(const TensorRef& t) {
    w_.n_params += static_cast<uint64_t>(t.n_elements());
    w_.n_bytes += t.n_bytes;
  }
  const TensorSource& f_;
  ModelWeights& w_;
  std::string cfg_arch_;
};

}  // namespace

ModelWeights load_weights(const GgufFile& f, ModelConfig& c) { return load_weights(GgufTensors(f), c); }

ModelWeights load_weights(const TensorSource& f, ModelConfig& c) {
  ModelWeights w;
  Binder b(f, w);
  b.set_arch(c.arch_name);

  const std::optional<TensorRef> embd = f.find("token_embd.weight");
  if (!embd) throw Error(f.label() + ": missing tensor 'token_embd.weight'");
  if (embd->ne.size() < 2) throw Error(f.label() + ": tensor 'token_embd.weight' must be 2-D");
  if (c.n_vocab == 0) c.n_vocab = embd->ne[1];
  const int64_t E = c.n_embd, V = c.n_vocab;
  w.token_embd = b.matrix("token_embd.weight", E, V);
  const float off = c.norm_weight_offset;
  w.output_norm = b.norm("output_norm.weight", E, off);
  w.output = b.matrix("output.weight", E, V, /*required=*/false);
  if (!w.output) {
    w.output = w.token_embd;
    w.tied_output = true;
  }
  w.rope_freqs = b.vec("rope_freqs.weight", c.rope.n_rot / 2, /*required=*/false);

  const int64_t Q = c.n_embd_q(), KV = c.n_embd_kv(), F = c.n_ff, D = c.head_dim;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    LayerWeights L;
    L.attn_norm = b.norm(p + "attn_norm.weight", E, off);
    if (c.fused_qkv) {
      L.wqkv = b.matrix(p + "attn_qkv.weight", E, Q + 2 * KV);
    } else {
      L.wq = b.matrix(p + "attn_q.weight", E, Q);
      L.wk = b.matrix(p + "attn_k.weight", E, KV);
      L.wv = b.matrix(p + "attn_v.weight", E, KV);
      L.bq = b.vec(p + "attn_q.bias", Q, c.qkv_bias_required);
      L.bk = b.vec(p + "attn_k.bias", KV, c.qkv_bias_required);
      L.bv = b.vec(p + "attn_v.bias", KV, c.qkv_bias_required);
    }
    if (c.qk_norm) {
      L.q_norm = b.vec(p + "attn_q_norm.weight", D);
      L.k_norm = b.vec(p + "attn_k_norm.weight", D);
    }
    L.wo = b.matrix(p + "attn_output.weight", Q, E);
    if (c.post_norms) {
      L.attn_post_norm = b.norm(p + "post_attention_norm.weight", E, off);
      L.ffn_post_norm = b.norm(p + "post_ffw_norm.weight", E, off);
    }
    L.ffn_norm = b.norm(p + "ffn_norm.weight", E, off);
    if (c.is_moe()) {
      const int64_t X = c.n_expert, FX = c.n_ff_exp;
      L.ffn_gate_inp = b.matrix(p + "ffn_gate_inp.weight", E, X);
      L.ffn_gate_exps = b.experts(p + "ffn_gate", E, FX, X);
      L.ffn_up_exps = b.experts(p + "ffn_up", E, FX, X);
      L.ffn_down_exps = b.experts(p + "ffn_down", FX, E, X);
      w.layers.push_back(std::move(L));
      continue;
    }
    if (c.fused_gate_up) {
      L.ffn_up = b.matrix(p + "ffn_up.weight", E, 2 * F);
    } else {
      L.ffn_gate = b.matrix(p + "ffn_gate.weight", E, F);
      L.ffn_up = b.matrix(p + "ffn_up.weight", E, F);
    }
    L.ffn_down = b.matrix(p + "ffn_down.weight", F, E);
    w.layers.push_back(std::move(L));
  }
  return w;
}

void for_each_matrix(ModelWeights& w, const std::function<void(const std::string&, WeightMatrix&, int)>& fn) {
  fn("token_embd.weight", w.token_embd, 0);
  if (!w.tied_output && w.output) fn("output.weight", w.output, 0);
  for (size_t il = 0; il < w.layers.size(); ++il) {
    LayerWeights& L = w.layers[il];
    const std::string b = "blk." + std::to_string(il) + ".";
    const std::pair<const char*, WeightMatrix*> per_layer[] = {
        {"attn_q.weight", &L.wq},     {"attn_k.weight", &L.wk},        {"attn_v.weight", &L.wv},
        {"attn_qkv.weight", &L.wqkv}, {"attn_output.weight", &L.wo},   {"ffn_gate.weight", &L.ffn_gate},
        {"ffn_up.weight", &L.ffn_up}, {"ffn_down.weight", &L.ffn_down}, {"ffn_gate_inp.weight", &L.ffn_gate_inp}};
    for (const auto& [name, m] : per_layer)
      if (*m) fn(b + name, *m, int(il));
    const std::pair<const char*, std::vector<WeightMatrix>*> experts[] = {
        {"ffn_gate_exps.weight", &L.ffn_gate_exps}, {"ffn_up_exps.weight", &L.ffn_up_exps},
        {"ffn_down_exps.weight", &L.ffn_down_exps}};
    for (const auto& [name, list] : experts)
      for (WeightMatrix& m : *list) fn(b + name, m, int(il));
  }
}

void pack_weights(ModelWeights& w, int n_threads) {
  // Every packed matrix goes into one buffer, so huge pages can back it (most matrices are smaller
  // than one), each matrix starting on a cache line.
  struct Job {
    std::string name;
    WeightMatrix* m;
    size_t offset;
    bool interleave;
  };
  std::vector<Job> jobs;
  size_t total = 0;
  for_each_matrix(w, [&](const std::string& name, WeightMatrix& m, int) {
    // The embedding matrix is read by rows, a few per token: packing it pays only when it is also
    // the output matrix, which every decoded token reads whole. Matrices already in an owned buffer
    // (load-time quantization) stay where they are.
    if ((&m == &w.token_embd && !w.tied_output) || m.interleaved || w.owns(m.data)) return;
    const bool interleave = matmul_prefers_interleaved(m.type) && m.n_out % kInterleavedRows == 0;
    const size_t bytes = interleave ? size_t(interleaved_group_bytes(m.type, m.n_in) * (m.n_out / kInterleavedRows))
                                    : size_t(m.row_stride() * m.n_out);
    jobs.push_back({name, &m, total, interleave});
    total += (bytes + 63) / 64 * 64;
  });
  if (jobs.empty()) return;
  auto arena = std::make_shared<PageBuffer>(total);
  ThreadPool pool(std::max(1, n_threads));
  for (const Job& job : jobs) {
    WeightMatrix& m = *job.m;
    const int64_t bytes = m.row_stride() * m.n_out;
    uint8_t* dst = arena->data() + job.offset;
    if (job.interleave) {
      const int64_t group_bytes = interleaved_group_bytes(m.type, m.n_in);
      pool.parallel_for(m.n_out / kInterleavedRows, [&](int64_t b, int64_t e) {
        // Each thread's pages, source and destination, mapped in one call each instead of a fault
        // per page (see PageBuffer::populate); matrix by matrix, so at most one matrix's source is
        // mapped beside the arena at a time, as before.
        populate_mapped_pages(m.data + b * kInterleavedRows * m.row_stride(), size_t((e - b) * kInterleavedRows * m.row_stride()));
        arena->populate(job.offset + size_t(b * group_bytes), size_t((e - b) * group_bytes));
        interleave_rows(m.type, m.data, m.n_in, b, e, dst + b * group_bytes);
      });
      // What a token reads (and what memory holds) grows by the layout's extra bytes, if any.
      const uint64_t extra = uint64_t(group_bytes * (m.n_out / kInterleavedRows)) - uint64_t(bytes);
      w.n_bytes += extra;
      if (job.name.find("_exps.") != std::string::npos) w.n_expert_bytes += extra;
      m.interleaved = true;
    } else {
      pool.parallel_for(m.n_out, [&](int64_t b, int64_t e) {
        populate_mapped_pages(m.data + b * m.row_stride(), size_t((e - b) * m.row_stride()));
        arena->populate(job.offset + size_t(b * m.row_stride()), size_t((e - b) * m.row_stride()));
        std::memcpy(dst + b * m.row_stride(), m.data + b * m.row_stride(), size_t((e - b) * m.row_stride()));
      });
    }
    release_mapped_pages(m.data, size_t(bytes));
    m.data = dst;
  }
  w.owned.push_back(std::move(arena));
  if (w.tied_output) w.output = w.token_embd;
}

}  // namespace chassis
