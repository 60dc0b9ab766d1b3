"""Helper of bench/grade_vs_mathverify.sh.

  pairs  SRC OUT OUT_DIFF OUT_RESPONSES   the (gold, pred) pairs of qwen_math_cot_100.jsonl
                           as JSONL, the subset whose two strings differ, and the
                           (gold, whole response) pairs
  verify PAIRS OUT RUNS     math-verify's verdict on each pair, timed RUNS times
  verify-cases CASES OUT RUNS   the same for (gold, response) case files: math-verify
                           parses the whole response, and the gold inside $..$ when it
                           has no math delimiters of its own (its documented usage)
  report TITLE BARL_LOG BARL_OUT MV_OUT [MV_RATES]   median pairs/s of each, the ratio,
                           the agreement (MV_RATES: the rate lines of alternated runs)

`verify` runs inside the math-verify venv; the timing covers only the loop of
parse + verify over the pairs (imports and interpreter start-up excluded).
"""

import json
import statistics
import sys
import time


def pairs(src, out, out_diff, out_responses):
    """All pairs to OUT; those whose two strings differ also to OUT_DIFF; the
    (gold, whole response) pairs to OUT_RESPONSES."""
    n = d = 0
    with open(src) as f, open(out, "w") as g, open(out_diff, "w") as h, open(out_responses, "w") as e:
        for line in f:
            row = json.loads(line)
            for k, response in enumerate(row["code"]):
                e.write(json.dumps({"idx": row["idx"], "k": k, "gold": row["gt"], "response": response}) + "\n")
            for k, pred in enumerate(row["pred"]):
                pair = json.dumps({"idx": row["idx"], "k": k, "gold": row["gt"], "pred": pred}) + "\n"
                g.write(pair)
                n += 1
                if pred.strip() != row["gt"].strip():
                    h.write(pair)
                    d += 1
    print(f"{n} pairs -> {out}; {d} with differing strings -> {out_diff}", file=sys.stderr)


def timed_verdicts(path, out, runs, judge):
    """judge(parse, verify, row) on every row of PATH, timed RUNS times; the
    verdicts and the rates (pairs/s) to OUT."""
    from math_verify import parse, verify as mv_verify

    rows = [json.loads(l) for l in open(path)]
    rates = []
    verdicts = []
    for _ in range(int(runs)):
        start = time.perf_counter()
        verdicts = [judge(parse, mv_verify, r) for r in rows]
        rates.append(len(rows) / (time.perf_counter() - start))
    with open(out, "w") as g:
        for i, (r, v) in enumerate(zip(rows, verdicts)):
            g.write(json.dumps({"idx": r.get("idx", i), "k": r.get("k", 0), "correct": v}) + "\n")
        g.write(json.dumps({"rates": rates}) + "\n")


def verify(pairs_path, out, runs):
    def judge(parse, mv_verify, r):
        # Both answers wrapped in \boxed{} so that math-verify's LaTeX extraction
        # sees exactly the strings barl grades.
        gold = parse("\\boxed{" + r["gold"] + "}")
        pred = parse("\\boxed{" + r["pred"] + "}")
        return bool(mv_verify(gold, pred))

    timed_verdicts(pairs_path, out, runs, judge)


def wrap_gold(gold):
    """The gold as math-verify expects it: inside $..$ unless already delimited."""
    if any(d in gold for d in ("$", "\\boxed", "\\(", "\\[")):
        return gold
    return "$" + gold + "$"


def verify_cases(cases_path, out, runs):
    def judge(parse, mv_verify, r):
        try:
            return bool(mv_verify(parse(wrap_gold(r["gold"])), parse(r["response"])))
        except Exception:  # a parse or timeout error is a "no"
            return False

    timed_verdicts(cases_path, out, runs, judge)


def report(title, barl_log, barl_out, mv_out, mv_rates_path=None):
    barl_rates = []
    for line in open(barl_log):
        # "graded 800 pairs with 'standard': 729 correct, accuracy 0.9113, 123456 pairs/s"
        if line.startswith("graded ") and line.rstrip().endswith("pairs/s"):
            barl_rates.append(float(line.split(", ")[-1].split()[0]))
    barl = [json.loads(l) for l in open(barl_out)]
    mv_lines = [json.loads(l) for l in open(mv_out)]
    mv = mv_lines[:-1]
    if mv_rates_path:
        # One rate line per alternated run.
        mv_rates = [r for l in open(mv_rates_path) for r in json.loads(l)["rates"]]
    else:
        mv_rates = mv_lines[-1]["rates"]
    assert len(barl) == len(mv), (len(barl), len(mv))
    agree = sum(a["correct"] == b["correct"] for a, b in zip(barl, mv))
    b_med, m_med = statistics.median(barl_rates), statistics.median(mv_rates)
    print(f"== {title}: {len(barl)} pairs")
    print(f"barl grade (standard): {b_med:,.0f} pairs/s (median of {len(barl_rates)}: "
          + ", ".join(f"{r:,.0f}" for r in barl_rates) + ")")
    print(f"math-verify parse+verify: {m_med:,.1f} pairs/s (median of {len(mv_rates)}: "
          + ", ".join(f"{r:,.1f}" for r in mv_rates) + ")")
    print(f"ratio: {b_med / m_med:,.0f}x")
    print(f"barl correct: {sum(r['correct'] for r in barl)}, math-verify correct: {sum(r['correct'] for r in mv)}")
    print(f"verdict agreement: {agree}/{len(barl)} ({100 * agree / len(barl):.1f}%)")
    if all("equal" in a for a in barl):
        # Case files carry the verdict decided by hand.
        hb = sum(a["correct"] == a["equal"] for a in barl)
        hm = sum(b["correct"] == a["equal"] for a, b in zip(barl, mv))
        print(f"agreement with the hand verdicts: barl {hb}/{len(barl)}, math-verify {hm}/{len(barl)}")
    for line, (a, b) in enumerate(zip(barl, mv), 1):
        if a["correct"] != b["correct"]:
            pred = a.get("pred", a.get("extracted"))
            print(f"  differ: line {line} gold {a['gold']!r} pred {pred!r}: "
                  f"barl {a['correct']} ({a['reason']}), math-verify {b['correct']}"
                  + (f", hand {a['equal']}" if "equal" in a else ""))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"pairs": pairs, "verify": verify, "verify-cases": verify_cases, "report": report}[cmd](*args)
