"""Benchmark: for each stack, the monthly estimate, the naive cost and the floor, and how long
`dragonfarm cost` and `dragonfarm diff` take (cold CLI runs, and the in-process step alone).

    .venv/bin/python bench/costs.py          (or: make bench)

Floor = GPU node-hours at the cheapest spot price + fixed fees that cannot be avoided (control
plane, system nodes, NAT hours, public IPs, keys). Naive = same usage on-demand, no scale-to-zero,
no lifecycle. Figures print; nothing is asserted (performance is measured, not tested).
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
    print(f"{'stack':<11}{'estimate':>12}{'naive':>13}{'floor':>12}{'saving':>8}{'budget':>8}"
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
            saving = 1 - est.total / est.naive_total if est.naive_total else 0.0
            print(f"{stack:<11}{est.total:>12,.2f}{est.naive_total:>13,.2f}{est.floor_total:>12,.2f}{saving:>8.0%}"
                  f"{est.budget_share:>8.0%}{cost_cold:>10.2f}s{est_warm * 1000:>8.1f}ms{diff_cold:>10.2f}s{diff_warm * 1000:>6.1f}ms")
    print(f"(USD per month; times are medians of {RUNS} runs; 'cost cold' includes planning the stack)")


if __name__ == "__main__":
    main()
