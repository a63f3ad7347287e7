#!/usr/bin/python3
"""Oracle test: `chassis template` must render every chat template in ../shared byte-identically to
transformers' apply_chat_template, i.e. Python jinja2 in the environment transformers builds
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson,
raise_exception, strftime_now). Where jinja2 raises, chassis must fail with the same message.

usage: compare_chat_templates.py CHASSIS_BINARY SHARED_DIR [--verbose]
Needs Debian's python3-jinja2 (no transformers: the environment below mirrors
transformers/utils/chat_template_utils.py::_compile_jinja_template)."""
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


class AssistantTracker(Extension):
    # transformers' {% generation %} ... {% endgeneration %} marker; renders its body unchanged.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def hf_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def special_tokens(config):
    out = {}
    for name in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]:
        v = config.get(name)
        if isinstance(v, dict):
            v = v.get("content")
        if v is not None:
            out[name] = v
    extra = config.get("additional_special_tokens")
    if isinstance(extra, list):
        out["additional_special_tokens"] = [t["content"] if isinstance(t, dict) else t for t in extra]
    return out


def gguf_chat_template(path):
    """(template, {bos_token, eos_token}) from a GGUF file's metadata, or None (a minimal reader)."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"GGUF":
        return None
    pos = 8
    n_tensors, n_kv = struct.unpack_from("<QQ", data, pos)
    pos += 16
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def read_string(p):
        (n,) = struct.unpack_from("<Q", data, p)
        return data[p + 8:p + 8 + n].decode("utf-8"), p + 8 + n

    def read_value(t, p):
        if t == 8:
            return read_string(p)
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, p)
            p += 12
            items = []
            for _ in range(n):
                v, p = read_value(et, p)
                items.append(v)
            return items, p
        fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}[t]
        return struct.unpack_from(fmt, data, p)[0], p + sizes[t]

    meta = {}
    for _ in range(n_kv):
        key, pos = read_string(pos)
        (t,) = struct.unpack_from("<I", data, pos)
        meta[key], pos = read_value(t, pos + 4)
    if "tokenizer.chat_template" not in meta:
        return None
    tokens = meta.get("tokenizer.ggml.tokens", [])
    special = {}
    for name, key in [("bos_token", "tokenizer.ggml.bos_token_id"), ("eos_token", "tokenizer.ggml.eos_token_id"),
                      ("unk_token", "tokenizer.ggml.unknown_token_id")]:
        if key in meta and meta[key] < len(tokens):
            special[name] = tokens[meta[key]]
    return meta["tokenizer.chat_template"], special


def template_sources(shared):
    """(label, chassis MODEL argument, template text, variables the model itself supplies)."""
    out = []
    tdir = os.path.join(shared, "models", "chat-templates")
    for name in sorted(os.listdir(tdir)):
        if name.endswith(".jinja"):
            path = os.path.join(tdir, name)
            with open(path, encoding="utf-8") as f:
                out.append((name, path, f.read(), {}))
    mdir = os.path.join(shared, "models")
    for name in sorted(os.listdir(mdir)):
        cfg = os.path.join(mdir, name, "tokenizer_config.json")
        if not os.path.exists(cfg):
            continue
        with open(cfg, encoding="utf-8") as f:
            config = json.load(f)
        tpl = config.get("chat_template")
        if isinstance(tpl, list):
            tpl = next((t["template"] for t in tpl if t.get("name") == "default"), None)
        if tpl is None:
            continue
        out.append((name + "/tokenizer_config.json", os.path.join(mdir, name), tpl, special_tokens(config)))
    for root in [mdir, os.path.join(shared, "golden", "models")]:
        for dirpath, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                if name.endswith(".gguf"):
                    found = gguf_chat_template(os.path.join(dirpath, name))
                    if found:
                        out.append((name, os.path.join(dirpath, name), found[0], found[1]))
    return out


def cases():
    conv_dir = os.path.join(HERE, "conversations")
    with open(os.path.join(HERE, "tools.json"), encoding="utf-8") as f:
        tools = json.load(f)
    for name in sorted(os.listdir(conv_dir)):
        with open(os.path.join(conv_dir, name), encoding="utf-8") as f:
            messages = json.load(f)
        uses_tools = any("tool_calls" in m or m["role"] == "tool" for m in messages)
        tool_variants = [tools] if uses_tools else [None, tools] if name == "basic.json" else [None]
        for t in tool_variants:
            for gen in (True, False):
                yield name, messages, t, gen


def render_hf(env, source, messages, tools, gen, variables):
    template = env.from_string(source)
    return template.render(messages=messages, tools=tools, documents=None, add_generation_prompt=gen, **variables)


def run_chassis(cmd):
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode("utf-8", "surrogateescape"), r.stderr.decode("utf-8", "replace")


def compare(what, expected, expected_error, result, failures, verbose):
    rc, got, err = result
    if expected_error is not None:
        if rc == 0 or expected_error not in err:
            failures.append(f"{what}: jinja2 raised {expected_error!r}; chassis rc={rc} stdout={got[:200]!r} stderr={err.strip()!r}")
        elif verbose:
            print(f"ok (both raise) {what}: {expected_error}")
        return
    if rc != 0:
        failures.append(f"{what}: chassis failed: {err.strip()}")
    elif got != expected:
        i = next((k for k in range(min(len(got), len(expected))) if got[k] != expected[k]), min(len(got), len(expected)))
        failures.append(f"{what}: differs at char {i}:\n  jinja2:  {expected[max(0, i - 60):i + 60]!r}\n  chassis: {got[max(0, i - 60):i + 60]!r}")
    elif verbose:
        print(f"ok {what}")


def snippets(chassis, env, tmp, failures, verbose):
    """Small templates exercising the language itself (tests/chat/snippets.json)."""
    with open(os.path.join(HERE, "snippets.json"), encoding="utf-8") as f:
        cases = json.load(f)
    empty = os.path.join(tmp, "empty.json")
    with open(empty, "w") as f:
        f.write("[]")
    raised = 0
    for i, case in enumerate(cases):
        variables = case.get("vars", {})
        path = os.path.join(tmp, f"snippet{i}.jinja")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(case["template"])
        try:
            expected, expected_error = render_hf(env, case["template"], [], None, True, variables), None
        except Exception as e:
            expected, expected_error = None, str(e)
            raised += 1
        cmd = [chassis, "template", path, "--messages", empty]
        for k, v in variables.items():
            cmd += ["--var", k + "=" + json.dumps(v, ensure_ascii=False)]
        compare(f"snippet {i} {case['template'][:50]!r}", expected, expected_error, run_chassis(cmd), failures, verbose)
    return len(cases), raised


def main():
    chassis, shared = sys.argv[1], sys.argv[2]
    verbose = "--verbose" in sys.argv
    env = hf_environment()
    failures, total, hf_errors = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        n, raised = snippets(chassis, env, tmp, failures, verbose)
        print(f"{n} snippets compared ({raised} where jinja2 raises)")
        tools_path = os.path.join(tmp, "tools.json")
        with open(tools_path, "w", encoding="utf-8") as f:
            json.dump(json.load(open(os.path.join(HERE, "tools.json"), encoding="utf-8")), f, ensure_ascii=False)
        for label, model_arg, source, model_vars in template_sources(shared):
            for conv, messages, tools, gen in cases():
                # Variables a caller passes: fixed date (templates that print today's date), thinking off
                # for Qwen3-style templates, and generic special tokens for bare .jinja files.
                extra = {"date_string": "26 Nov 2026", "enable_thinking": False}
                if model_arg.endswith(".jinja"):
                    extra.update({"bos_token": "<s>", "eos_token": "</s>"})
                if "firefunction" in label:
                    extra["functions"] = json.dumps(tools or [])
                variables = {**model_vars, **extra}
                total += 1
                try:
                    expected, expected_error = render_hf(env, source, messages, tools, gen, variables), None
                except Exception as e:  # jinja2 refuses this conversation: chassis must refuse it the same way
                    expected, expected_error = None, str(e)
                    hf_errors += 1
                msg_path = os.path.join(tmp, "messages.json")
                with open(msg_path, "w", encoding="utf-8") as f:
                    json.dump(messages, f, ensure_ascii=False)
                cmd = [chassis, "template", model_arg, "--messages", msg_path]
                if tools is not None:
                    cmd += ["--tools", tools_path]
                if not gen:
                    cmd.append("--no-generation-prompt")
                for k, v in extra.items():
                    cmd += ["--var", k + "=" + json.dumps(v, ensure_ascii=False)]
                what = f"{label} × {conv} tools={tools is not None} gen={gen}"
                compare(what, expected, expected_error, run_chassis(cmd), failures, verbose)
    print(f"{total} chat renderings compared ({hf_errors} where jinja2 raises), {len(failures)} differ")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
