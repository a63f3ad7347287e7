#!/usr/bin/env python3
"""The issue-4 benchmark matrix, run by hand (never by the tests):

    python3 bench/bench_matrix.py [--chassis build/chassis] [-p 128] [-n 32] [-r 3] [-t 2] [--rounds 1]

Runs `chassis bench --synthetic SHAPE --type TYPE --json` for Qwen2.5-0.5B and Llama-3.2-1B shapes in
F16, Q8_0, Q4_0 and Q4_K_M, and prints a markdown table with the roofline fraction and the ratio to
llama.cpp's numbers measured on this machine (the table in issue 4: 2 threads, prefill 128, decode).

--rounds R runs the whole matrix R times, row after row, so that a neighbour's load on a shared host
lands on every row alike rather than on whichever row was running; each row then shows the median of
its R runs (each run's roofline fraction against the bandwidth that same run measured) and the
spread, and whether the median meets issue 4's goal for that row.
"""
import argparse
import json
import statistics
import subprocess
import sys

# llama.cpp CPU build, 2 threads, same synthetic shapes (issue 4): (prefill tok/s, decode tok/s)
LLAMA_CPP = {
    ("llama-3.2-1b", "f16"): (70, 9.4),
    ("llama-3.2-1b", "q8_0"): (50, 14.3),
    ("llama-3.2-1b", "q4_k_m"): (53, 20.3),
    ("llama-3.2-1b", "q4_0"): (63, 23.5),
    ("qwen2.5-0.5b", "f16"): (184, 23.3),
    ("qwen2.5-0.5b", "q8_0"): (130, 32.1),
    ("qwen2.5-0.5b", "q4_k_m"): (111, 34.5),
    ("qwen2.5-0.5b", "q4_0"): (140, 45.0),  # the issue gives ranges 120-159 / 42-48: their middles
}

# Issue 4's goals: decode >= 85 % of the roofline for the quantized types; prefill >= llama.cpp's
# table for F16 and >= 1.5x it for the quantized types. For Qwen Q4_0, whose table is a range, the
# prefill goal is taken against the range's top (159), the strict reading.
DECODE_GOAL = 0.85
PREFILL_TOP = {("qwen2.5-0.5b", "q4_0"): 159}


def run_row(a, shape, typ):
    cmd = [a.chassis, "bench", "--synthetic", shape, "--type", typ, "-p", str(a.p), "-n", str(a.n),
           "-r", str(a.r), "-t", str(a.t), "--json"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def goal(shape, typ, pp, frac):
    ref = LLAMA_CPP.get((shape, typ))
    if not ref:
        return "-"
    pp_ref = PREFILL_TOP.get((shape, typ), ref[0])
    if typ == "f16":
        return "met" if pp >= pp_ref else "prefill short"
    misses = []
    if pp < 1.5 * pp_ref:
        misses.append("prefill short")
    if frac < DECODE_GOAL:
        misses.append("decode short")
    return ", ".join(misses) if misses else "met"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chassis", default="build/chassis")
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--shapes", default="qwen2.5-0.5b,llama-3.2-1b")
    ap.add_argument("--types", default="f16,q8_0,q4_0,q4_k_m")
    a = ap.parse_args()
    rows = [(s, t) for s in a.shapes.split(",") for t in a.types.split(",")]
    runs = {row: [] for row in rows}
    for k in range(a.rounds):
        for row in rows:
            j = run_row(a, *row)
            runs[row].append(j)
            if a.rounds > 1:
                print("round %d/%d %s %s: decode %.1f tok/s, %.1f %% of %.1f GB/s" % (
                    k + 1, a.rounds, row[0], row[1], j["decode_tok_s"]["median"], 100 * j["roofline_fraction"],
                    j["bandwidth_gb_s"]), file=sys.stderr, flush=True)

    med = statistics.median
    print("| model | type | size | prefill tok/s (%d) | decode tok/s | roofline | bandwidth | llama.cpp pp / tg | vs llama.cpp pp / tg | goal |" % a.p)
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
    for shape, typ in rows:
        js = runs[(shape, typ)]
        if a.rounds == 1:  # one run: its own median and spread over the repetitions
            pp_med, pp_lo, pp_hi = (js[0]["prefill_tok_s"][x] for x in ("median", "min", "max"))
            tg_med, tg_lo, tg_hi = (js[0]["decode_tok_s"][x] for x in ("median", "min", "max"))
            roof = "%.0f %%" % (100 * js[0]["roofline_fraction"])
        else:  # several rounds: the median of the runs' medians, and their spread
            pps = [j["prefill_tok_s"]["median"] for j in js]
            tgs = [j["decode_tok_s"]["median"] for j in js]
            fracs = [j["roofline_fraction"] for j in js]
            pp_med, pp_lo, pp_hi = med(pps), min(pps), max(pps)
            tg_med, tg_lo, tg_hi = med(tgs), min(tgs), max(tgs)
            roof = "%.0f %% (%.0f–%.0f)" % (100 * med(fracs), 100 * min(fracs), 100 * max(fracs))
        frac = med([j["roofline_fraction"] for j in js])
        bw = med([j["bandwidth_gb_s"] for j in js])
        ref = LLAMA_CPP.get((shape, typ))
        vs = "%.2f× / %.2f×" % (pp_med / ref[0], tg_med / ref[1]) if ref else "-"
        print("| %s | %s | %.0f MiB | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %s | %.1f GB/s | %s | %s | %s |" % (
            shape, typ.upper(), js[0]["size_bytes"] / 2**20, pp_med, pp_lo, pp_hi, tg_med, tg_lo, tg_hi, roof, bw,
            "%g / %g" % ref if ref else "-", vs, goal(shape, typ, pp_med, frac)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
