"""Benchmark: for each stack, the floor, the monthly estimate, the cost without dragonfarm's savings
(month 1 and month 12) and the ceiling, and how long `dragonfarm cost` and `dragonfarm diff` take
(cold CLI runs, and the in-process step alone).

    .venv/bin/python bench/costs.py          (or: make bench)

Floor = the same usage hours at the cheapest price the pools allow (spot where allowed), storage in
its cheapest class, plus fixed fees. Without savings = the same hours on-demand, every object kept in
the hot class for ever, dev boxes never stopped. Ceiling = every GPU pool at max_nodes all month.
Figures print; nothing is asserted (performance is measured, not tested).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dragonfarm.cost import estimate  # noqa: E402
from dragonfarm.diff import diff_plans  # noqa: E402
from dragonfarm.plan import plan_stack  # noqa: E402
from dragonfarm.stacks import names  # noqa: E402

RUNS = 3


def cold(*args: str) -> float:
    """Median wall time of a fresh `dragonfarm` process (imports included)."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dragonfarm.cli", *args], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def warm(fn) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    print(f"{'stack':<11}{'floor':>11}{'estimate':>11}{'without':>11}{'without@12':>12}{'ceiling':>12}{'budget':>8}{'priced':>8}"
          f"{'cost cold':>11}{'estimate':>10}{'diff cold':>11}{'diff':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for stack in names():
            if stack.startswith("zz"):
                continue
            plan = plan_stack(stack)
            est = estimate(plan)
            plan_file = Path(tmp) / f"{stack}.json"
            plan_file.write_text(plan.to_json())
            cost_cold = cold("cost", stack, "--json")
            diff_cold = cold("diff", str(plan_file), str(plan_file), "--format", "markdown")
            est_warm = warm(lambda: estimate(plan))
            diff_warm = warm(lambda: diff_plans(plan, plan))
            priced = "all" if est.complete else f"-{len(est.unpriced())}"
            print(f"{stack:<11}{est.floor_total:>11,.2f}{est.total:>11,.2f}{est.without_total:>11,.2f}{est.without12_total:>12,.2f}"
                  f"{est.ceiling_total:>12,.2f}{est.budget_share:>8.0%}{priced:>8}"
                  f"{cost_cold:>10.2f}s{est_warm * 1000:>8.1f}ms{diff_cold:>10.2f}s{diff_warm * 1000:>6.1f}ms")
    print(f"(USD per month; times are medians of {RUNS} runs; 'cost cold' includes planning the stack)")


if __name__ == "__main__":
    main()
