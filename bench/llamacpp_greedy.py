#!/usr/bin/env python3
"""llama.cpp side of bench/engine_vs_llamacpp.sh, and its report.

  llamacpp_greedy.py run MODEL.gguf BARL.json OUT.json [--new-tokens N] [--threads T]
      Loads MODEL with llama-cpp-python (CPU), feeds it the prompt ids that
      `barl bench engine --json BARL.json` used (field prompt_ids), then decodes
      greedily at batch 1 for exactly N new tokens: argmax of the logits, ties to
      the lowest id, no stop token (EOS is fed back like any other token, as
      barl's bench does). Writes the prompt and generation times and the tokens.

  llamacpp_greedy.py report OUT.json BARL_RUN.json... -- LLAMA_RUN.json...
      Medians over the runs, the table and the summary JSON.

Timings, the same for both engines: the first new token comes from the
prompt's logits, so N tokens take the prompt pass plus N-1 one-token passes.
  decode tokens/s     = N / (total - prompt pass)
  end-to-end tokens/s = N / total            (barl bench's own figure)
For barl, the prompt pass is the `prefill` figure of the same bench process,
run with --prefill-len equal to the prompt length.
"""

import json
import os
import statistics
import sys
import time


def run(argv: list[str]) -> int:
    import argparse

    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    ap = argparse.ArgumentParser(prog="llamacpp_greedy.py run")
    ap.add_argument("model")
    ap.add_argument("barl_json", help="a `barl bench engine --json` file (prompt_ids)")
    ap.add_argument("out")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)

    with open(a.barl_json) as f:
        prompt = [int(t) for t in json.load(f)["prompt_ids"]]
    t = time.perf_counter()
    llm = Llama(
        model_path=a.model,
        n_ctx=len(prompt) + a.new_tokens + 16,
        n_batch=512,
        n_threads=a.threads,
        n_threads_batch=a.threads,
        n_gpu_layers=0,
        verbose=False,
    )
    load_s = time.perf_counter() - t
    n_vocab = llm.n_vocab()

    llm.reset()
    tokens: list[int] = []
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    while True:
        # The last position's logits, read in place (Llama.eval keeps them in
        # llm.scores only with logits_all=True).
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        tok = int(np.argmax(np.ctypeslib.as_array(ptr, shape=(n_vocab,))))
        tokens.append(tok)
        if len(tokens) == a.new_tokens:
            break
        llm.eval([tok])
    t2 = time.perf_counter()

    res = {
        "engine": "llama.cpp",
        "model": a.model,
        "threads": a.threads,
        "prompt_tokens": len(prompt),
        "new_tokens": a.new_tokens,
        "load_s": load_s,
        "prompt_s": t1 - t0,
        "total_s": t2 - t0,
        "decode_tokens_per_s": a.new_tokens / (t2 - t1),
        "end_to_end_tokens_per_s": a.new_tokens / (t2 - t0),
        "tokens": tokens,
        "text": llm.detokenize(tokens).decode("utf-8", errors="replace"),
    }
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


def barl_run(path: str) -> dict:
    with open(path) as f:
        b = json.load(f)
    s = b["sampling"][0]
    if s["batch"] != 1:
        raise ValueError(f"{path}: first sampling entry has batch {s['batch']}, expected 1")
    if b["prefill"]["tokens"] != s["prompt_tokens"]:
        raise ValueError(f"{path}: prefill length {b['prefill']['tokens']} != prompt length {s['prompt_tokens']}")
    total, prompt_s, n = s["seconds"], b["prefill"]["seconds"], s["new_tokens"]
    return {
        "prompt_tokens": s["prompt_tokens"],
        "new_tokens": n,
        "prompt_s": prompt_s,
        "total_s": total,
        "decode_tokens_per_s": n / (total - prompt_s),
        "end_to_end_tokens_per_s": s["tokens_per_s"],
        "tokens": s["first_completion"],
        "greedy": b.get("greedy"),
        "threads": b.get("threads"),
    }


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def report(argv: list[str]) -> int:
    out, rest = argv[0], argv[1:]
    sep = rest.index("--")
    barl = [barl_run(p) for p in rest[:sep]]
    llama = []
    for p in rest[sep + 1 :]:
        with open(p) as f:
            llama.append(json.load(f))
    if not barl or not llama:
        print("report: need at least one run of each engine", file=sys.stderr)
        return 1

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    summary = {"runs": {"barl": len(barl), "llama.cpp": len(llama)}}
    for key in ("decode_tokens_per_s", "end_to_end_tokens_per_s", "prompt_s", "total_s"):
        summary[key] = {"barl": med(barl, key), "llama.cpp": med(llama, key)}
    for key in ("decode_tokens_per_s", "end_to_end_tokens_per_s"):
        summary[key]["ratio_barl_over_llamacpp"] = summary[key]["barl"] / summary[key]["llama.cpp"]
    summary["prompt_tokens"] = barl[0]["prompt_tokens"]
    summary["new_tokens"] = barl[0]["new_tokens"]
    summary["barl_greedy"] = barl[0]["greedy"]
    summary["threads"] = {"barl": barl[0]["threads"], "llama.cpp": llama[0]["threads"]}
    summary["same_tokens_leading"] = common_prefix(barl[0]["tokens"], llama[0]["tokens"])
    summary["per_run"] = {
        "barl_decode_tokens_per_s": [r["decode_tokens_per_s"] for r in barl],
        "llama.cpp_decode_tokens_per_s": [r["decode_tokens_per_s"] for r in llama],
    }
    summary["llama.cpp_text"] = llama[0]["text"]
    summary["load_average_before"] = os.environ.get("LOADAVG_BEFORE")
    with open("/proc/loadavg") as f:
        summary["load_average_after"] = " ".join(f.read().split()[:3])

    d, e = summary["decode_tokens_per_s"], summary["end_to_end_tokens_per_s"]
    print(f"greedy, batch 1, {summary['new_tokens']} new tokens after a {summary['prompt_tokens']}-token prompt, "
          f"median of {len(barl)} / {len(llama)} runs")
    print(f"{'':<22}{'barl':>10}{'llama.cpp':>12}{'barl/llama':>12}")
    print(f"{'decode tokens/s':<22}{d['barl']:>10.1f}{d['llama.cpp']:>12.1f}{d['ratio_barl_over_llamacpp']:>11.2f}x")
    print(f"{'end-to-end tokens/s':<22}{e['barl']:>10.1f}{e['llama.cpp']:>12.1f}{e['ratio_barl_over_llamacpp']:>11.2f}x")
    p = summary["prompt_s"]
    print(f"{'prompt pass (ms)':<22}{p['barl'] * 1e3:>10.1f}{p['llama.cpp'] * 1e3:>12.1f}")
    print(f"greedy tokens identical for the first {summary['same_tokens_leading']} of {summary['new_tokens']}")
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "report"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(run(sys.argv[2:]) if sys.argv[1] == "run" else report(sys.argv[2:]))
