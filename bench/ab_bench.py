#!/usr/bin/env python3
"""Alternating A/B of two `chassis bench` runs, run by hand (never by the tests):

    python3 bench/ab_bench.py [--a BIN_A] [--b BIN_B] [--env-a K=V ...] [--env-b K=V ...]
                              [--flags-a "--no-pack"] [--flags-b ...]
                              [--turns 5] [--key decode_tok_s] MODEL [bench args...]

Runs A then B, `--turns` times, and prints each turn and the medians. On a shared machine whose
speed drifts by 10-30 % within the hour, only runs taken turn about in one sitting compare.

Where the change can be put behind the trial switch (src/core/ab_switch.h), prefer
`chassis bench MODEL --ab`: both sides in one process, A B B A, seconds apart. Separate processes
also differ in where their pages land, and on the EPYC of docs/performance.md this script's six
turns showed a 512-bit Q4_0 tile +8 % that one-process runs put at -1.7 % to +0.6 %.
"""
import argparse
import json
import os
import statistics
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", default="build/chassis", help="binary A")
    ap.add_argument("--b", default="build/chassis", help="binary B")
    ap.add_argument("--env-a", nargs="*", default=[], help="K=V set for A")
    ap.add_argument("--env-b", nargs="*", default=[], help="K=V set for B")
    ap.add_argument("--flags-a", default="", help="extra bench flags for A (one string)")
    ap.add_argument("--flags-b", default="", help="extra bench flags for B (one string)")
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--key", default="decode_tok_s", help="decode_tok_s or prefill_tok_s")
    ap.add_argument("model")
    ap.add_argument("bench_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    runs = []
    for binary, extra, flags in ((args.a, args.env_a, args.flags_a), (args.b, args.env_b, args.flags_b)):
        env = dict(os.environ)
        env.update(kv.split("=", 1) for kv in extra)
        runs.append((binary, env, [], flags.split()))
    for turn in range(args.turns):
        for binary, env, out, flags in runs:
            r = subprocess.run([binary, "bench", args.model, *args.bench_args, *flags, "--json"], env=env,
                               capture_output=True, text=True, check=True)
            out.append(json.loads(r.stdout)[args.key]["median"])
        print(f"turn {turn}: A {runs[0][2][-1]:.1f}  B {runs[1][2][-1]:.1f}", flush=True)
    a, b = statistics.median(runs[0][2]), statistics.median(runs[1][2])
    print(f"{args.key}: A median {a:.2f} (max {max(runs[0][2]):.2f}) | B median {b:.2f} "
          f"(max {max(runs[1][2]):.2f}) | B/A {b / a:.3f}")


if __name__ == "__main__":
    main()
