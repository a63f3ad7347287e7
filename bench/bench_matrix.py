#!/usr/bin/env python3
"""The issue-4 benchmark matrix, run by hand (never by the tests):

    python3 bench/bench_matrix.py [--chassis build/chassis] [-p 128] [-n 32] [-r 3] [-t 2]

Runs `chassis bench --synthetic SHAPE --type TYPE --json` for Qwen2.5-0.5B and Llama-3.2-1B shapes in
F16, Q8_0, Q4_0 and Q4_K_M, and prints a markdown table with the roofline fraction and the ratio to
llama.cpp's numbers measured on this machine (the table in issue 4: 2 threads, prefill 128, decode).
"""
import argparse
import json
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chassis", default="build/chassis")
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--shapes", default="qwen2.5-0.5b,llama-3.2-1b")
    ap.add_argument("--types", default="f16,q8_0,q4_0,q4_k_m")
    a = ap.parse_args()
    print("| model | type | size | prefill tok/s (%d) | decode tok/s | roofline | bandwidth | llama.cpp pp / tg | vs llama.cpp pp / tg |" % a.p)
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for shape in a.shapes.split(","):
        for typ in a.types.split(","):
            cmd = [a.chassis, "bench", "--synthetic", shape, "--type", typ, "-p", str(a.p), "-n", str(a.n),
                   "-r", str(a.r), "-t", str(a.t), "--json"]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            j = json.loads(out)
            pp, tg = j["prefill_tok_s"], j["decode_tok_s"]
            ref = LLAMA_CPP.get((shape, typ))
            vs = "%.2f× / %.2f×" % (pp["median"] / ref[0], tg["median"] / ref[1]) if ref else "-"
            print("| %s | %s | %.0f MiB | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %.0f %% | %.1f GB/s | %s | %s |" % (
                shape, typ.upper(), j["size_bytes"] / 2**20, pp["median"], pp["min"], pp["max"],
                tg["median"], tg["min"], tg["max"], 100 * j["roofline_fraction"], j["bandwidth_gb_s"],
                "%g / %g" % ref if ref else "-", vs))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
