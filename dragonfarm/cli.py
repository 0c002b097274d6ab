"""The dragonfarm command line.

    dragonfarm plan <stack> [--json]              offline plan (under mocks; not a pulumi preview)
    dragonfarm cost <stack|plan.json> [--json]    monthly cost estimate against the budget
    dragonfarm diff <base> <head> [--format]      changes, cost delta and unsafe changes between two plans
    dragonfarm prices refresh [--cloud] [--region] rebuild compute prices, regional availability and Azure blob prices
    dragonfarm stacks [--environment E] [--json]  the stacks, with cloud, region, environment
    dragonfarm check <stack|plan.json> [--json]   guardrail violations (rules in dragonfarm/guardrails/)
    dragonfarm check --rules-markdown             the rules table the README carries

Exit status: 0 done; 1 failed; 2 bad input (one line per problem on stderr); 3 estimate over budget
(--fail-over-budget); 4 unsafe change (--fail-on-danger); 5 a mandatory guardrail rule fails (check).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="dragonfarm: GPU AI platforms on AWS, GCP and Azure, cheap and secure by default.")

FAILED, BAD_INPUT, OVER_BUDGET, UNSAFE, VIOLATION = 1, 2, 3, 4, 5


@app.callback()
def _group() -> None:
    """Keep subcommands explicit (`dragonfarm plan ...`)."""


def fail(lines: str, code: int) -> NoReturn:
    for line in lines.splitlines():
        print(f"error: {line}", file=sys.stderr)
    raise typer.Exit(code)


def load_plan(stack: str):
    """Plan a stack, turning every known failure into clean error lines and an exit status."""
    from blueprints.config import ConfigError
    from dragonfarm.plan import PlanError, ProgramRefused, plan_stack
    from dragonfarm.stacks import StackNotFound

    try:
        return plan_stack(stack)
    except (ConfigError, StackNotFound, ProgramRefused) as exc:
        fail(str(exc), BAD_INPUT)
    except PlanError as exc:
        fail(str(exc), FAILED)


@app.command()
def plan(
    stack: Annotated[str, typer.Argument(help="Stack name under stacks/ (e.g. aws-dev) or a path to a stack YAML.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the Plan as JSON (sorted, stable).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the Plan JSON to this file.")] = None,
) -> None:
    """Offline plan: run the program under mocks and show every resource it asks for."""
    started = time.perf_counter()
    result = load_plan(stack)
    if out is not None:
        try:
            out.write_text(result.to_json() + "\n")
        except OSError as exc:
            fail(f"--out {out}: cannot write it ({exc.strerror}); allowed: a writable file path", BAD_INPUT)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if json_out:
        print(result.to_json())
        return
    from rich.console import Console

    from dragonfarm.render import print_plan

    console = Console()
    print_plan(result, console)
    console.print(f"[dim]planned in {time.perf_counter() - started:.2f}s[/]")


prices_app = typer.Typer(no_args_is_help=True, help="The price catalog (dragonfarm/prices/).")
app.add_typer(prices_app, name="prices")


@prices_app.command("refresh")
def prices_refresh(
    cloud: Annotated[Optional[list[str]], typer.Option("--cloud", help="aws, gcp or azure (repeatable). Default: aws and azure.")] = None,
    region: Annotated[Optional[list[str]], typer.Option("--region", help="Only these regions (repeatable). Default: every region regions.csv lists.")] = None,
) -> None:
    """Rebuild compute prices from the clouds' public price lists (needs network; GCP needs GCP_API_KEY)."""
    from components.fence import regions as fence_regions
    from dragonfarm.refresh import refresh

    clouds = cloud or ["aws", "azure"]
    bad = [c for c in clouds if c not in ("aws", "gcp", "azure")]
    if bad:
        fail(f"--cloud: got {bad[0]!r}; allowed: aws, gcp, azure", BAD_INPUT)
    known = {r for c in clouds for r in fence_regions.regions(c)}
    unknown = [r for r in region or [] if r not in known]
    if unknown:
        fail(f"--region: got {unknown[0]!r}; allowed: a region of {', '.join(clouds)} in regions.csv: {', '.join(sorted(known))}", BAD_INPUT)
    try:
        updated, kept = refresh(clouds, regions=region)
        from dragonfarm.refresh import refresh_storage

        for storage_cloud in (c for c in clouds if c in ("aws", "azure")):
            chosen = [r for r in fence_regions.regions(storage_cloud) if region is None or r in region]
            print(f"updated {refresh_storage(chosen, cloud=storage_cloud)} {storage_cloud} rows of dragonfarm/prices/storage.csv")
    except ValueError as exc:
        fail(str(exc), BAD_INPUT)
    except OSError as exc:
        fail(f"price list not reachable ({exc}); the catalog is unchanged", FAILED)
    for line in kept:
        print(f"kept: {line}")
    print(f"updated {updated} rows of dragonfarm/prices/compute.csv; review the diff before committing")


@app.command()
def cost(
    stack: Annotated[str, typer.Argument(help="Stack name, stack YAML path, or a Plan JSON file (from `plan --json`).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")] = False,
    fail_over_budget: Annotated[bool, typer.Option("--fail-over-budget", help=f"Exit {OVER_BUDGET} when the estimate exceeds the budget or is incomplete.")] = False,
    allow_unpriced: Annotated[bool, typer.Option("--allow-unpriced", help="With --fail-over-budget: pass an incomplete estimate (unpriced items) that is under the budget.")] = False,
) -> None:
    """Monthly cost estimate: every resource that bills, by layer, with the floor, the cost without dragonfarm's savings and the ceiling."""
    from dragonfarm.cost import estimate

    result = estimate(plan_or_json(stack))
    if json_out:
        print(result.to_json())
    else:
        from rich.console import Console

        from dragonfarm.render import print_estimate

        print_estimate(result, Console())
    if fail_over_budget and result.total > result.budget:
        print(f"error: estimate {result.total:,.2f} {result.currency} exceeds the budget {result.budget:,.2f} {result.currency}",
              file=sys.stderr)
        raise typer.Exit(OVER_BUDGET)
    if fail_over_budget and not result.complete and not allow_unpriced:
        names = ", ".join(line.name for line in result.unpriced()[:5])
        print(f"error: estimate incomplete: {len(result.unpriced())} billable items unpriced ({names}"
              f"{', ...' if len(result.unpriced()) > 5 else ''}); allowed: a complete estimate, or --allow-unpriced",
              file=sys.stderr)
        raise typer.Exit(OVER_BUDGET)


@app.command()
def diff(
    base: Annotated[str, typer.Argument(help="Baseline: a Plan JSON file, a stack name, or <stack>@<git revision>.")],
    head: Annotated[str, typer.Argument(help="New: a Plan JSON file, a stack name, or <stack>@<git revision>.")],
    format: Annotated[str, typer.Option("--format", help="text or markdown (a pull-request comment).")] = "text",
    fail_on_danger: Annotated[bool, typer.Option("--fail-on-danger", help=f"Exit {UNSAFE} when a change destroys data or replaces a node pool.")] = False,
) -> None:
    """What changes between two plans: added, changed (which inputs), removed, replaced, and the cost delta."""
    from dragonfarm.diff import diff_plans

    if format not in ("text", "markdown"):
        fail(f"--format: got {format!r}; allowed: text, markdown", BAD_INPUT)
    result = diff_plans(plan_or_json(base), plan_or_json(head))
    if format == "markdown":
        from dragonfarm.report import pr_comment

        print(pr_comment(result), end="")
    else:
        from rich.console import Console

        from dragonfarm.render import print_diff

        print_diff(result, Console())
    if fail_on_danger and result.dangers:
        raise typer.Exit(UNSAFE)


@app.command("check")
def check_command(
    stack: Annotated[Optional[str], typer.Argument(help="Stack name, stack YAML path, or a Plan JSON file (from `plan --json`).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    rules_markdown: Annotated[bool, typer.Option("--rules-markdown", help="Print the rules table (id, title, severity, checkov) and exit.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the findings as a pull-request comment section.")] = False,
) -> None:
    """Guardrails: every rule over the stack's plan; exits 5 when a mandatory rule fails (advisory ones only print)."""
    import json

    from dragonfarm.guardrails import BY_ID, check, resources_from_plan
    from dragonfarm.guardrails import rules_markdown as table

    if rules_markdown:
        print(table(), end="")
        return
    if stack is None:
        fail("check: got no stack; allowed: a stack name, a stack YAML path or a Plan JSON file (or --rules-markdown)", BAD_INPUT)
    result = plan_or_json(stack)
    report = check(resources_from_plan(result), waivers=result.waivers)
    if json_out:
        print(json.dumps({"stack": result.stack, **report.as_dict()}, indent=2, sort_keys=True))
    elif markdown:
        from dragonfarm.render import guardrails_markdown

        print(guardrails_markdown(result.stack, report), end="")
    else:
        from rich.console import Console

        from dragonfarm.render import print_guardrails

        print_guardrails(result.stack, report, Console())
    unjudged = sorted({rule for rule, _, _ in report.not_evaluated if BY_ID[rule].severity == "mandatory"})
    if unjudged:
        # A plan holds mock values only, so this means a value the program computes at deploy: the pack judges it then.
        print(f"warning: mandatory rule(s) not evaluated on a value unknown before the deploy: {', '.join(unjudged)}", file=sys.stderr)
    if report.mandatory:
        raise typer.Exit(VIOLATION)


@app.command("stacks")
def list_stacks(
    environment: Annotated[Optional[str], typer.Option("--environment", help="Only stacks whose dragonfarm:environment is this (e.g. prod).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print name, cloud, region, environment and reachability as JSON.")] = False,
) -> None:
    """The stacks under stacks/, read from their config (a stack is prod by `environment: prod`, not by its file name)."""
    import json

    from blueprints.config import ConfigError, load_farm
    from dragonfarm.stacks import names, read_config, resolve

    rows = []
    for name in names():
        if name.startswith("zz"):
            continue
        try:
            farm = load_farm(read_config(resolve(name)[1]), source=name)
        except ConfigError as exc:
            fail(str(exc), BAD_INPUT)
        if environment is not None and farm.environment != environment:
            continue
        inside = farm.breeding_ground is not None and farm.breeding_ground.deploy_from == "inside-network"
        rows.append({"stack": name, "cloud": farm.cloud, "region": farm.region, "environment": farm.environment, "inside_network": inside})
    if json_out:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(row["stack"])


def plan_or_json(source: str):
    """A Plan from a Plan JSON file, or by planning a stack."""
    if source.endswith(".json"):
        from dragonfarm.plan import Plan

        path = Path(source)
        if not path.is_file():
            fail(f"{source}: no such Plan JSON file; allowed: a file written by `dragonfarm plan --json`", BAD_INPUT)
        try:
            return Plan.from_json(path.read_text())
        except (ValueError, KeyError, TypeError) as exc:
            fail(f"{source}: not a Plan JSON ({exc}); allowed: a file written by `dragonfarm plan --json`", BAD_INPUT)
    if "@" in source:
        stack, _, revision = source.partition("@")
        return plan_at_revision(stack, revision)
    return load_plan(source)


def plan_at_revision(stack: str, revision: str):
    """Plan `stack` with the code and stack file of a git revision (a temporary worktree).

    A stack that does not exist at that revision is an empty Plan (a new stack: everything in the other is
    new); a stack that does not exist in the working tree either is a misspelling, refused.
    """
    import os
    import subprocess
    import tempfile

    from dragonfarm.plan import Plan
    from dragonfarm.stacks import project_root

    root = project_root()
    if not (root / "stacks" / f"Pulumi.{stack}.yaml").is_file():
        from dragonfarm.stacks import names

        fail(f"{stack}@{revision}: got stack {stack!r}; allowed: a stack under stacks/: {', '.join(names())}", BAD_INPUT)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        added = subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(tree), revision],
                               capture_output=True, text=True)
        if added.returncode != 0:
            fail(f"{stack}@{revision}: got revision {revision!r}; allowed: a git revision of {root} ({added.stderr.strip()})", BAD_INPUT)
        try:
            if not (tree / "stacks" / f"Pulumi.{stack}.yaml").is_file():
                return Plan(stack=stack, cloud="", region="", environment="", resources=[])
            run = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "plan", stack, "--json"], cwd=tree, capture_output=True,
                                 text=True, env={**os.environ, "PYTHONPATH": str(tree)})
            if run.returncode != 0:
                last = (run.stderr.strip().splitlines() or ["no output"])[-1]
                fail(f"{stack}@{revision}: the plan at that revision failed: {last}", FAILED)
            return Plan.from_json(run.stdout)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], capture_output=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
