"""Writes tiny random-weight Hugging Face folders, one per supported architecture, deterministically
(pure Python: no numpy or torch needed, so CI can run it).

Each folder: config.json (the family's real field names), model.safetensors (F32), and the
stories260K tokenizer files (vocab 512), so `chassis run DIR` works end to end.

usage: make_tiny_models.py SHARED_DIR OUT_DIR
"""
import array
import json
import os
import random
import shutil
import sys

VOCAB = 512
HIDDEN, LAYERS, HEADS, KV_HEADS, FF = 64, 2, 4, 2, 128

ARCHS = {
    # Llama 3 style rope scaling, untied lm_head.
    'llama': {'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'tie_word_embeddings': False,
              'rope_theta': 500000.0,
              'rope_scaling': {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0, 'high_freq_factor': 4.0,
                               'original_max_position_embeddings': 64}},
    # Mistral v0.1's sliding window, wider than anything the test evaluates.
    'mistral': {'architectures': ['MistralForCausalLM'], 'model_type': 'mistral', 'tie_word_embeddings': False,
                'rope_theta': 10000.0, 'sliding_window': 4096},
    # Mistral with a window of 6 positions on every layer, which the 26-token test crosses.
    'mistral_window': {'_weights': 'mistral', 'architectures': ['MistralForCausalLM'], 'model_type': 'mistral',
                       'tie_word_embeddings': False, 'rope_theta': 10000.0, 'sliding_window': 6},
    # Qwen2: q/k/v biases, tied embeddings (as the small Qwen2.5 models).
    'qwen2': {'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2', 'tie_word_embeddings': True,
              'rope_theta': 1000000.0, 'use_sliding_window': False, 'sliding_window': 4096},
    # Phi-3: fused qkv_proj and gate_up_proj, untied lm_head.
    'phi3': {'architectures': ['Phi3ForCausalLM'], 'model_type': 'phi3', 'tie_word_embeddings': False,
             'rope_theta': 10000.0, 'sliding_window': 2047, 'rope_scaling': None},
    # Qwen3: q/k RMSNorm per head, head_dim set apart from hidden/heads.
    'qwen3': {'architectures': ['Qwen3ForCausalLM'], 'model_type': 'qwen3', 'tie_word_embeddings': True,
              'rope_theta': 1000000.0, 'head_dim': 32},
    # Gemma 2: (1 + w) RMSNorms before and after each block, GELU(tanh) MLP, soft-capped scores and
    # logits, and a sliding window on even layers narrow enough (8) that the test crosses it.
    'gemma2': {'architectures': ['Gemma2ForCausalLM'], 'model_type': 'gemma2', 'tie_word_embeddings': True,
               'rope_theta': 10000.0, 'head_dim': 32, 'query_pre_attn_scalar': 32, 'sliding_window': 8,
               'attn_logit_softcapping': 50.0, 'final_logit_softcapping': 30.0, 'rms_norm_eps': 1e-6,
               'hidden_act': 'gelu_pytorch_tanh', 'hidden_activation': 'gelu_pytorch_tanh'},
    # Qwen2 weights with YaRN rope scaling (4x over an original context of 64, head size 32 so the
    # correction ramp spans several pairs). '_weights' names the family whose tensors the folder has.
    'qwen2_yarn': {'_weights': 'qwen2', 'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2',
                   'tie_word_embeddings': True, 'rope_theta': 10000.0, 'head_dim': 32,
                   'rope_scaling': {'type': 'yarn', 'factor': 4.0, 'original_max_position_embeddings': 64}},
    # Mixtral: every layer a sparse MoE block (4 experts, 2 per token) under block_sparse_moe.
    'mixtral': {'architectures': ['MixtralForCausalLM'], 'model_type': 'mixtral', 'tie_word_embeddings': False,
                'rope_theta': 1000000.0, 'sliding_window': None, 'num_local_experts': 4, 'num_experts_per_tok': 2},
    # Qwen3-MoE: q/k norms, 8 narrow experts (2 per token) under mlp.experts, renormalized top-k.
    'qwen3moe': {'architectures': ['Qwen3MoeForCausalLM'], 'model_type': 'qwen3_moe', 'tie_word_embeddings': False,
                 'rope_theta': 1000000.0, 'head_dim': 32, 'num_experts': 8, 'num_experts_per_tok': 2,
                 'moe_intermediate_size': 32, 'norm_topk_prob': True, 'decoder_sparse_step': 1, 'mlp_only_layers': []},
}

# Fixed per folder, so adding an architecture leaves the others' weights (and goldens) as they were.
SEEDS = {'llama': 0, 'mistral': 1, 'phi3': 2, 'qwen2': 3, 'qwen3': 4, 'gemma2': 5, 'mixtral': 6, 'qwen3moe': 7,
         'qwen2_yarn': 8, 'mistral_window': 9}


def tensors_for(arch, cfg, rng):
    head_dim = cfg.get('head_dim', HIDDEN // HEADS)

    # Gemma's post-norms rescale every block's output: wider weights keep its greedy path varied.
    def mat(rows, cols, scale=0.4 if arch == 'gemma2' else 0.08):
        return (rows, cols), [rng.gauss(0.0, scale) for _ in range(rows * cols)]

    def norm(n):  # Gemma stores w where its norm multiplies by 1 + w
        return (n,), [(0.0 if arch == 'gemma2' else 1.0) + rng.gauss(0.0, 0.1) for _ in range(n)]

    def vec(n, scale=0.05):
        return (n,), [rng.gauss(0.0, scale) for _ in range(n)]

    # Tied models read logits off the embeddings: keep them small, or each token predicts itself.
    t = {'model.embed_tokens.weight': mat(VOCAB, HIDDEN, (0.05 if arch == 'gemma2' else 0.1) if cfg['tie_word_embeddings'] else 0.5)}
    for i in range(LAYERS):
        p = f'model.layers.{i}.'
        t[p + 'input_layernorm.weight'] = norm(HIDDEN)
        if arch == 'phi3':
            t[p + 'self_attn.qkv_proj.weight'] = mat((HEADS + 2 * KV_HEADS) * head_dim, HIDDEN)
        else:
            t[p + 'self_attn.q_proj.weight'] = mat(HEADS * head_dim, HIDDEN)
            t[p + 'self_attn.k_proj.weight'] = mat(KV_HEADS * head_dim, HIDDEN)
            t[p + 'self_attn.v_proj.weight'] = mat(KV_HEADS * head_dim, HIDDEN)
        t[p + 'self_attn.o_proj.weight'] = mat(HIDDEN, HEADS * head_dim)
        if arch == 'qwen2':
            t[p + 'self_attn.q_proj.bias'] = vec(HEADS * head_dim)
            t[p + 'self_attn.k_proj.bias'] = vec(KV_HEADS * head_dim)
            t[p + 'self_attn.v_proj.bias'] = vec(KV_HEADS * head_dim)
        if arch in ('qwen3', 'qwen3moe'):
            t[p + 'self_attn.q_norm.weight'] = norm(head_dim)
            t[p + 'self_attn.k_norm.weight'] = norm(head_dim)
        t[p + 'post_attention_layernorm.weight'] = norm(HIDDEN)
        if arch == 'gemma2':
            t[p + 'pre_feedforward_layernorm.weight'] = norm(HIDDEN)
            t[p + 'post_feedforward_layernorm.weight'] = norm(HIDDEN)
        if arch == 'mixtral':
            t[p + 'block_sparse_moe.gate.weight'] = mat(cfg['num_local_experts'], HIDDEN, 0.5)  # router
            for e in range(cfg['num_local_experts']):
                q = f'{p}block_sparse_moe.experts.{e}.'
                t[q + 'w1.weight'] = mat(FF, HIDDEN)
                t[q + 'w3.weight'] = mat(FF, HIDDEN)
                t[q + 'w2.weight'] = mat(HIDDEN, FF)
            continue
        if arch == 'qwen3moe':
            t[p + 'mlp.gate.weight'] = mat(cfg['num_experts'], HIDDEN, 0.5)  # router
            ff = cfg['moe_intermediate_size']
            for e in range(cfg['num_experts']):
                q = f'{p}mlp.experts.{e}.'
                t[q + 'gate_proj.weight'] = mat(ff, HIDDEN, 0.16)
                t[q + 'up_proj.weight'] = mat(ff, HIDDEN, 0.16)
                t[q + 'down_proj.weight'] = mat(HIDDEN, ff, 0.16)
            continue
        if arch == 'phi3':
            t[p + 'mlp.gate_up_proj.weight'] = mat(2 * FF, HIDDEN)
        else:
            t[p + 'mlp.gate_proj.weight'] = mat(FF, HIDDEN)
            t[p + 'mlp.up_proj.weight'] = mat(FF, HIDDEN)
        t[p + 'mlp.down_proj.weight'] = mat(HIDDEN, FF)
    t['model.norm.weight'] = norm(HIDDEN)
    if not cfg['tie_word_embeddings']:
        t['lm_head.weight'] = mat(VOCAB, HIDDEN, 0.2)
    return t


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        shape, values = tensors[name]
        data = array.array('f', values)
        if sys.byteorder != 'little':
            data.byteswap()
        raw = data.tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(len(h).to_bytes(8, 'little'))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    shared, out = sys.argv[1], sys.argv[2]
    for arch, extra in sorted(ARCHS.items()):
        seed = SEEDS[arch]
        d = os.path.join(out, arch)
        os.makedirs(d, exist_ok=True)
        cfg = {'hidden_size': HIDDEN, 'num_hidden_layers': LAYERS, 'num_attention_heads': HEADS,
               'num_key_value_heads': KV_HEADS, 'intermediate_size': FF, 'vocab_size': VOCAB,
               'max_position_embeddings': 256, 'rms_norm_eps': 1e-5, 'hidden_act': 'silu',
               'bos_token_id': 1, 'eos_token_id': 2, 'torch_dtype': 'float32'}
        cfg.update(extra)
        weights_like = cfg.pop('_weights', arch)
        with open(os.path.join(d, 'config.json'), 'w') as f:
            json.dump(cfg, f, indent=2)
        write_safetensors(os.path.join(d, 'model.safetensors'), tensors_for(weights_like, cfg, random.Random(1000 + seed)))
        for name in ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']:
            shutil.copy(os.path.join(shared, 'models', 'stories260K-hf', name), os.path.join(d, name))
        with open(os.path.join(d, 'generation_config.json'), 'w') as f:
            json.dump({'bos_token_id': 1, 'eos_token_id': 2}, f)


if __name__ == '__main__':
    main()
