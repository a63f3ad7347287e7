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


def main():
    chassis, shared = sys.argv[1], sys.argv[2]
    verbose = "--verbose" in sys.argv
    env = hf_environment()
    failures, total, hf_errors = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
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
                r = subprocess.run(cmd, capture_output=True, timeout=60)
                what = f"{label} × {conv} tools={tools is not None} gen={gen}"
                if expected_error is not None:
                    err = r.stderr.decode("utf-8", "replace")
                    if r.returncode == 0 or expected_error not in err:
                        failures.append(f"{what}: jinja2 raised {expected_error!r}; chassis rc={r.returncode} stderr={err.strip()!r}")
                    elif verbose:
                        print(f"ok (both raise) {what}: {expected_error}")
                    continue
                if r.returncode != 0:
                    failures.append(f"{what}: chassis failed: {r.stderr.decode('utf-8', 'replace').strip()}")
                    continue
                got = r.stdout.decode("utf-8", "surrogateescape")
                if got != expected:
                    i = next((k for k in range(min(len(got), len(expected))) if got[k] != expected[k]), min(len(got), len(expected)))
                    failures.append(f"{what}: differs at char {i}:\n  jinja2:  {expected[max(0, i - 60):i + 60]!r}\n  chassis: {got[max(0, i - 60):i + 60]!r}")
                elif verbose:
                    print(f"ok {what}")
    print(f"{total} renderings compared ({hf_errors} where jinja2 raises), {len(failures)} differ")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
