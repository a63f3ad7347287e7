"""A reference forward pass in plain PyTorch (Debian's python3-torch), written from Hugging Face
transformers' modeling code (LlamaForCausalLM and the Mistral/Qwen2/Qwen3/Phi-3/Gemma 2/Mixtral/Qwen3-MoE variants): RMSNorm in
float32, rotate_half RoPE (with Llama 3 and YaRN frequency scaling), GQA by repeat_kv, causal softmax
attention, SwiGLU MLP, tied or separate lm_head. It greedily continues a prompt on each tiny folder
of make_tiny_models.py and writes the goldens the CI test compares chassis against (so CI needs no
PyTorch).

usage: torch_reference.py MODELS_DIR GOLDENS_DIR
"""
import json
import math
import os
import sys

import torch

PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376]  # "<s>Once upon a time, there was a little"
STEPS = 16
KEEP_LOGITS = [0, 3, 7, 15]  # steps whose full logits go into the golden


def load_safetensors(path):
    with open(path, 'rb') as f:
        n = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        assert info['dtype'] == 'F32'
        a, b = info['data_offsets']
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(info['shape'])
    return out


def rms_norm(x, w, eps):
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def gemma_rms_norm(x, w, eps):  # Gemma2RMSNorm: scaled by (1 + w)
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + w.float())


def gelu_tanh(x):  # transformers' gelu_pytorch_tanh
    return torch.nn.functional.gelu(x, approximate='tanh')


def softcap(x, cap):
    return torch.tanh(x / cap) * cap


def inv_freq_of(cfg, dim):
    base = cfg.get('rope_theta', 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.get('rope_scaling')
    if rs and rs.get('rope_type', rs.get('type')) == 'llama3':  # transformers' _compute_llama3_parameters
        factor, low, high = rs['factor'], rs['low_freq_factor'], rs['high_freq_factor']
        old = rs['original_max_position_embeddings']
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv_freq
        inv_llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv_freq = torch.where(medium, smoothed, inv_llama)
    attention_factor = 1.0
    if rs and rs.get('rope_type', rs.get('type')) == 'yarn':  # transformers' _compute_yarn_parameters
        factor = rs['factor']
        old = rs.get('original_max_position_embeddings') or cfg['max_position_embeddings']
        attention_factor = rs.get('attention_factor') or (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
        beta_fast, beta_slow = rs.get('beta_fast') or 32, rs.get('beta_slow') or 1

        def correction_dim(rotations):
            return (dim * math.log(old / (rotations * 2 * math.pi))) / (2 * math.log(base))
        low = max(math.floor(correction_dim(beta_fast)), 0)
        high = min(math.ceil(correction_dim(beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        extrapolation = 1 - ramp
        pos_freqs = base ** (torch.arange(0, dim, 2).float() / dim)
        inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
    return inv_freq, attention_factor


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def moe(cfg, w, p, h):
    """MixtralSparseMoeBlock / Qwen3MoeSparseMoeBlock: softmax router, top-k, renormalized (Mixtral always,
    Qwen3-MoE when norm_topk_prob), each expert's SwiGLU output weighted and summed in expert order."""
    mixtral = cfg['model_type'] == 'mixtral'
    n_expert = cfg['num_local_experts'] if mixtral else cfg['num_experts']
    gate = w[p + ('block_sparse_moe.gate.weight' if mixtral else 'mlp.gate.weight')]
    probs = torch.softmax((h @ gate.T).float(), dim=-1)  # (T, X)
    weights, chosen = torch.topk(probs, cfg['num_experts_per_tok'], dim=-1)  # (T, K)
    if mixtral or cfg.get('norm_topk_prob'):
        weights = weights / weights.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(h)
    for e in range(n_expert):
        rows, slot = torch.where(chosen == e)
        if rows.numel() == 0:
            continue
        q = p + (f'block_sparse_moe.experts.{e}.' if mixtral else f'mlp.experts.{e}.')
        g, u, d = ('w1', 'w3', 'w2') if mixtral else ('gate_proj', 'up_proj', 'down_proj')
        xe = h[rows]
        y = (torch.nn.functional.silu(xe @ w[q + g + '.weight'].T) * (xe @ w[q + u + '.weight'].T)) @ w[q + d + '.weight'].T
        out.index_add_(0, rows, y * weights[rows, slot, None])
    return out


def forward(cfg, w, ids):
    arch = cfg['model_type']
    H, KV = cfg['num_attention_heads'], cfg['num_key_value_heads']
    D = cfg.get('head_dim') or cfg['hidden_size'] // H
    eps = cfg['rms_norm_eps']
    T = len(ids)
    gemma = arch == 'gemma2'
    norm = gemma_rms_norm if gemma else rms_norm
    x = w['model.embed_tokens.weight'][torch.tensor(ids)]  # (T, E)
    if gemma:
        x = x * torch.tensor(cfg['hidden_size'] ** 0.5, dtype=x.dtype)
    pos = torch.arange(T, dtype=torch.float32)
    inv_freq, attention_factor = inv_freq_of(cfg, D)
    freqs = pos[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos() * attention_factor, emb.sin() * attention_factor  # (T, D)
    mask = torch.full((T, T), float('-inf')).triu(1)
    for i in range(cfg['num_hidden_layers']):
        p = f'model.layers.{i}.'
        h = norm(x, w[p + 'input_layernorm.weight'], eps)

        def proj(name):
            y = h @ w[p + f'self_attn.{name}.weight'].T
            b = w.get(p + f'self_attn.{name}.bias')
            return y + b if b is not None else y
        if arch == 'phi3':  # Phi3Attention: one qkv_proj, split q | k | v
            qkv = h @ w[p + 'self_attn.qkv_proj.weight'].T
            q = qkv[:, : H * D].view(T, H, D)
            k = qkv[:, H * D: H * D + KV * D].view(T, KV, D)
            v = qkv[:, H * D + KV * D:].view(T, KV, D)
        else:
            q = proj('q_proj').view(T, H, D)
            k = proj('k_proj').view(T, KV, D)
            v = proj('v_proj').view(T, KV, D)
        if arch in ('qwen3', 'qwen3_moe'):
            q = rms_norm(q, w[p + 'self_attn.q_norm.weight'], eps)
            k = rms_norm(k, w[p + 'self_attn.k_norm.weight'], eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # (heads, T, D)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        if gemma:  # Gemma2Attention: query_pre_attn_scalar, soft-capped scores, window on even layers
            scores = softcap(q @ k.transpose(1, 2) * cfg['query_pre_attn_scalar'] ** -0.5, cfg['attn_logit_softcapping'])
            layer_mask = mask
            if i % 2 == 0:
                layer_mask = mask.masked_fill(torch.ones(T, T, dtype=torch.bool).tril(-cfg['sliding_window']), float('-inf'))
            scores = scores + layer_mask
        elif arch == 'mistral' and cfg.get('sliding_window'):  # MistralAttention: every layer windowed
            window = torch.ones(T, T, dtype=torch.bool).tril(-cfg['sliding_window'])
            scores = q @ k.transpose(1, 2) / math.sqrt(D) + mask.masked_fill(window, float('-inf'))
        else:
            scores = q @ k.transpose(1, 2) / math.sqrt(D) + mask
        attn = torch.softmax(scores.float(), dim=-1) @ v  # (H, T, D)
        o = attn.transpose(0, 1).reshape(T, H * D) @ w[p + 'self_attn.o_proj.weight'].T
        if gemma:
            x = x + norm(o, w[p + 'post_attention_layernorm.weight'], eps)
            h = norm(x, w[p + 'pre_feedforward_layernorm.weight'], eps)
        else:
            x = x + o
            h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], eps)
        if arch in ('mixtral', 'qwen3_moe'):
            x = x + moe(cfg, w, p, h)
            continue
        if arch == 'phi3':  # Phi3MLP: gate_up_proj, then chunk(2): gate first
            gate, up = (h @ w[p + 'mlp.gate_up_proj.weight'].T).chunk(2, dim=-1)
        else:
            gate = h @ w[p + 'mlp.gate_proj.weight'].T
            up = h @ w[p + 'mlp.up_proj.weight'].T
        if gemma:
            x = x + norm((gelu_tanh(gate) * up) @ w[p + 'mlp.down_proj.weight'].T, w[p + 'post_feedforward_layernorm.weight'], eps)
        else:
            x = x + (torch.nn.functional.silu(gate) * up) @ w[p + 'mlp.down_proj.weight'].T
    x = norm(x, w['model.norm.weight'], eps)
    head = w.get('lm_head.weight', w['model.embed_tokens.weight'])
    logits = x @ head.T  # (T, V)
    return softcap(logits, cfg['final_logit_softcapping']) if gemma else logits


def main():
    models, goldens = sys.argv[1], sys.argv[2]
    os.makedirs(goldens, exist_ok=True)
    torch.set_grad_enabled(False)
    for arch in sorted(os.listdir(models)):
        d = os.path.join(models, arch)
        cfg = json.load(open(os.path.join(d, 'config.json')))
        w = load_safetensors(os.path.join(d, 'model.safetensors'))
        ids, steps, margins = list(PROMPT), [], []
        for s in range(STEPS):
            logits = forward(cfg, w, ids)[-1]
            top = torch.topk(logits, 2)
            margins.append(float(top.values[0] - top.values[1]))
            nxt = int(top.indices[0])
            if s in KEEP_LOGITS:
                steps.append({'step': s, 'logits': [float('%.7g' % v) for v in logits.tolist()]})
            ids.append(nxt)
        golden = {'arch': arch, 'prompt': PROMPT, 'greedy': ids[len(PROMPT):], 'min_margin': min(margins),
                  'torch': torch.__version__, 'logits': steps}
        with open(os.path.join(goldens, arch + '.json'), 'w') as f:
            json.dump(golden, f, separators=(',', ':'))
        print(arch, 'greedy', golden['greedy'], 'min margin %.4f' % min(margins))


if __name__ == '__main__':
    main()
