"""The CrossGuard pack's tests, run in the pack's own venv (policy/.venv, built by `make test`): pulumi-policy pins
an older protobuf than the project's lock. The recorded plans of the shipped stacks and of seeded insecure variants
are handed over with `dragonfarm check`'s verdicts on them; the pack, called through pulumi-policy's API, must give
the same verdicts."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from dragonfarm.guardrails import check, resources_from_plan
from tests.conftest import ROOT, STACKS
from tests.test_guardrails import SEEDS, plan_json, seeded

PACK_PYTHON = ROOT / "policy" / ".venv" / "bin" / "python"


def case(name: str, plan: dict) -> dict:
    report = check(resources_from_plan(plan))
    return {"name": name, "resources": plan["resources"],
            "expected": sorted({(f.rule, f.urn) for f in report.findings})}


def test_pack_tests_pass_in_the_pack_venv_with_the_same_verdicts_as_check(tmp_path):
    if not PACK_PYTHON.exists():
        pytest.fail("policy/.venv is missing: `make test` builds it (make policy/.venv/.installed)")
    cases = [case(stack, plan_json(stack)) for stack in STACKS]
    # One seeded variant per cloud and family, so the parity covers failing verdicts too (prod-only rules included).
    for rule_id in ("DF-AWS-004", "DF-AWS-013", "DF-GCP-006", "DF-AZ-001", "DF-K8S-001", "DF-COST-001", "DF-COST-008"):
        seed = next(s for s in SEEDS if s[0] == rule_id)
        cases.append(case(f"{rule_id} seeded", seeded(seed)))
    assert any(c["expected"] for c in cases)
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    run = subprocess.run([str(PACK_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "policy/tests"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "DF_GUARDRAIL_CASES": str(path)})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "skipped" not in run.stdout.splitlines()[-1], run.stdout[-500:]
