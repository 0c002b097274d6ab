"""`dragonfarm diff`: what changes, what it costs (deltas by hand from the catalog), what is unsafe."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from dragonfarm.diff import diff_plans
from dragonfarm.plan import Plan
from dragonfarm.report import MARKER, pr_comment
from tests.conftest import ROOT, plan_config, planned, stack_config

# us-east-1 rows (compute.csv, spot.csv): spot is the median over the zones.
P4D_OD = 21.9576  # p4d.24xlarge on-demand (no other a100-40gb x8 type on AWS)
P4D_SPOT = (7.8799 + 8.1203) / 2  # zones az1 2.4655, az2 8.1915, az4 8.1203, az6 7.8799
G5_12XL_SPOT = 2.1824  # zones 2.7804, 2.0796, 2.0813, 2.1824, 2.2387
G6_XL_SPOT = (0.3653 + 0.3988) / 2  # zones 0.4011, 0.3653, 0.349, 0.3988
DISK_HOUR = 200 * 0.08 / 730


def changed(config_edit, tmp_path):
    config = stack_config("aws-dev")
    config_edit(config)
    return diff_plans(planned("aws-dev"), plan_config(config, tmp_path, name="aws-dev"))


def test_no_change_is_an_empty_diff(tmp_path):
    d = changed(lambda c: None, tmp_path)
    assert d.changes == [] and d.delta == 0


def test_gpu_change_costs_by_hand_and_warns_of_drift(tmp_path):
    def edit(c):
        c["dragonfarm:breeding_ground"]["gpu_pools"]["train"].update(gpu="a100-40gb", gpus_per_node=8)

    d = changed(edit, tmp_path)
    (pool,) = [c for c in d.changes if c.name == "dfarm-aws-dev-cluster-nodepool-train"]
    assert pool.kind == "update" and "spec.template.spec" in pool.inputs
    assert pool.delta == pytest.approx(200 * (P4D_SPOT + DISK_HOUR) - 200 * (G5_12XL_SPOT + DISK_HOUR), abs=0.01)  # +1,163.54
    assert "Karpenter drift" in pool.danger
    assert d.delta == pytest.approx(pool.delta, abs=0.01)


def test_renaming_a_bucket_replaces_it_and_says_data_is_lost(tmp_path):
    d = changed(lambda c: c["dragonfarm:troughs"]["datasets"].update(name="dfarm-aws-dev-data-v2"), tmp_path)
    (bucket,) = [c for c in d.changes if c.type == "aws:s3/bucket:Bucket"]
    assert bucket.kind == "replace" and "bucket" in bucket.inputs
    assert "holding data" in bucket.danger
    assert d.dangers[0] is bucket  # unsafe changes come first


def test_removing_a_bucket_is_a_destroy(tmp_path):
    def edit(c):
        c["dragonfarm:troughs"].pop("logs")
        c["dragonfarm:usage"]["storage"].pop("logs")
        c["dragonfarm:breeding_ground"]["teams"]["serving"]["troughs"].pop("logs")

    d = changed(edit, tmp_path)
    removed = [c for c in d.changes if c.kind == "remove"]
    assert len(removed) == 7  # the bucket and its six settings resources (components are not compared)
    (bucket,) = [c for c in removed if c.type == "aws:s3/bucket:Bucket"]
    assert "DESTROYS" in bucket.danger
    # The logs bucket's estimate (see test_cost): 100 GB a month over 30.42-day months, 30 days Standard,
    # 60 Standard-IA, 275 Glacier (S3 us-east-1: 0.023, 0.0125, 0.0036).
    day = 100 / (730 / 24)
    assert bucket.delta == pytest.approx(-day * (30 * 0.023 + 60 * 0.0125 + 275 * 0.0036), abs=0.01)


def test_protected_resources_are_called_out_as_blocked():
    prod = planned("aws-prod")
    smaller = json.loads(prod.to_json())
    smaller["resources"] = [r for r in smaller["resources"] if r["name"] != "dfarm-aws-prod-models"]
    from dragonfarm.plan import Plan

    d = diff_plans(prod, Plan.from_json(json.dumps(smaller)))
    (bucket,) = [c for c in d.changes if c.type == "aws:s3/bucket:Bucket"]
    assert bucket.kind == "remove" and "protected" in bucket.danger


def test_a_urn_change_without_alias_is_a_replacement():
    base = planned("aws-dev")
    body = json.loads(base.to_json())
    for r in body["resources"]:
        if r["name"] == "dfarm-aws-dev-cluster-nodepool-infer":
            r["urn"] = r["urn"].replace("AwsBreedingGround$", "AwsBreedingGround$dragonfarm:index:GpuPools$")
    from dragonfarm.plan import Plan

    d = diff_plans(base, Plan.from_json(json.dumps(body)))
    (change,) = d.changes
    assert change.kind == "replace" and "without an alias" in change.inputs[0] and "node pool" in change.danger


def test_markdown_comment_has_marker_summary_table_details_and_diagram(tmp_path):
    d = changed(lambda c: c["dragonfarm:usage"]["gpu_node_hours"].update(infer=800), tmp_path)
    text = pr_comment(d)
    assert text.splitlines()[0] == MARKER.format(stack="aws-dev") == "<!-- dragonfarm-preview stack=aws-dev -->"
    delta = 200 * (G6_XL_SPOT + DISK_HOUR)  # 200 more node-hours of g6.xlarge spot
    assert f"Monthly cost up ${delta:,.2f}" in text
    assert "| Resource | Baseline | New | Change |" in text and f"+${delta:,.2f}" in text
    assert "<details>" in text and "```mermaid" in text and "fence --> trough" in text
    assert "not `pulumi preview`" in text
    # aws-dev ships with an RFC 5737 example endpoint range: the reviewer is told `pulumi up` will stop on it.
    assert "> **`pulumi up` will refuse this stack as it stands:**" in text
    assert "dragonfarm:breeding_ground.public_endpoint_cidrs[0]: got '203.0.113.0/24'; allowed: your runners' public CIDRs" in text


def test_cli_diff_of_plan_files_and_of_git_revisions(tmp_path):
    base = tmp_path / "base.json"
    base.write_text(planned("aws-dev").to_json())
    run = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "diff", str(base), "aws-dev", "--format", "markdown"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and "Monthly cost unchanged" in run.stdout
    at_head = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "diff", "aws-dev@HEAD", "aws-dev"], capture_output=True, text=True,
                             cwd=ROOT)
    assert at_head.returncode == 0, at_head.stderr
    assert "not `pulumi preview`" in at_head.stdout


def test_stack_missing_at_the_base_revision_is_all_new(tmp_path):
    import shutil

    path = ROOT / "stacks" / "Pulumi.zz-new.yaml"
    shutil.copy(ROOT / "stacks" / "Pulumi.aws-dev.yaml", path)
    try:
        run = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "diff", "zz-new@HEAD", "zz-new", "--format", "markdown"],
                             capture_output=True, text=True, cwd=ROOT)
    finally:
        path.unlink()
    assert run.returncode == 0, run.stderr
    assert "0 to change, 0 to replace, 0 to destroy" in run.stdout and "Monthly cost up" in run.stdout
    assert "**New stack at head:** `zz-new` does not exist at the base revision" in run.stdout
    misspelled = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "diff", "aws-dvv@HEAD", "aws-dev"], capture_output=True,
                                text=True, cwd=ROOT)
    assert misspelled.returncode == 2 and "got stack 'aws-dvv'; allowed: a stack under stacks/: " in misspelled.stderr


def test_fail_on_danger_exit_status(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:troughs"].pop("logs")
    config["dragonfarm:usage"]["storage"].pop("logs")
    config["dragonfarm:breeding_ground"]["teams"]["serving"]["troughs"].pop("logs")
    path = tmp_path / "Pulumi.aws-dev.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    run = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "diff", "aws-dev", str(path), "--fail-on-danger"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 4 and "UNSAFE" in run.stdout


# ---- data-destroying changes ------------------------------------------------------------------------


def danger_of(d, name):
    (change,) = [c for c in d.changes if c.name == name]
    return change


def test_an_expiry_added_to_a_bucket_is_a_danger_with_the_gb_it_deletes(tmp_path):
    # datasets: 2,000 GB stored, 200 GB a month in (usage profile): with objects deleted at 60 days, all but the
    # newest 60 days' arrivals (200 / 30.42 x 60 = 394.5 GB) go: about 1,605 GB.
    d = changed(lambda c: c["dragonfarm:troughs"]["datasets"].update(lifecycle={"expire_after_days": 60}), tmp_path)
    change = danger_of(d, "dfarm-aws-dev-datasets-lifecycle")
    assert change.danger == ("DELETES DATA: objects older than 60 days are deleted (was: never); about 1,605 GB of the "
                             "2,000 GB stored today (usage profile) is older than that")
    text = pr_comment(d)
    assert "[!CAUTION]" in text and "objects older than 60 days are deleted" in text


def test_old_versions_kept_for_less_time_is_a_danger(tmp_path):
    d = changed(lambda c: c["dragonfarm:troughs"]["datasets"].update(lifecycle={"noncurrent_expire_after_days": 7}), tmp_path)
    assert danger_of(d, "dfarm-aws-dev-datasets-lifecycle").danger == "DELETES DATA: old versions are kept 7 days (was: 30 days)"


def test_versioning_turned_off_is_a_danger(tmp_path):
    d = changed(lambda c: c["dragonfarm:troughs"]["datasets"].update(versioning=False), tmp_path)
    change = danger_of(d, "dfarm-aws-dev-datasets-versioning")
    assert change.danger == "DELETES DATA: versioning turned off: overwritten and deleted objects can no longer be recovered"
    # Before -> after values of the changed input, in the text and the markdown.
    assert change.values == [("versioningConfiguration.status", "Enabled", "Suspended")]
    assert "`versioningConfiguration.status`: Enabled → Suspended" in pr_comment(d)


def test_removing_a_team_deletes_its_namespace_and_says_so(tmp_path):
    def edit(c):
        c["dragonfarm:breeding_ground"]["teams"].pop("serving")

    d = changed(edit, tmp_path)
    namespace = danger_of(d, "dfarm-aws-dev-cluster-gpu-team-serving")
    assert namespace.kind == "remove"
    assert namespace.danger == ("DESTROYS the team namespace serving: every job, volume claim, secret and queue in it is deleted")


def test_a_removed_key_is_scheduled_for_deletion(tmp_path):
    base = planned("aws-dev")
    head = Plan.from_json(base.to_json())
    head.resources = [r for r in head.resources if r.type != "aws:kms/key:Key"]
    (key,) = [c for c in diff_plans(base, head).changes if c.type == "aws:kms/key:Key"]
    assert key.danger.startswith("DESTROYS an encryption key: it is scheduled for deletion")


def test_a_renamed_bucket_replaces_its_settings_too(tmp_path):
    # The S3 bucket-settings resources take `bucket` as a force-new argument (pulumi-aws BucketVersioning,
    # BucketLifecycleConfiguration... docs): a new bucket name replaces each of them, not an update.
    d = changed(lambda c: c["dragonfarm:troughs"]["logs"].update(name="dfarm-aws-dev-logs-2"), tmp_path)
    kinds = {c.type.split(":")[-1]: c.kind for c in d.changes if c.name.startswith("dfarm-aws-dev-logs")}
    assert kinds["Bucket"] == "replace"
    assert {kinds[t] for t in ("BucketVersioning", "BucketLifecycleConfiguration", "BucketPolicy")} == {"replace"}


def test_prod_is_decided_by_the_environment_key_not_the_file_name(tmp_path):
    # The workflow fails unsafe changes of `dragonfarm stacks --environment prod` and previews every stack of
    # `dragonfarm stacks --json`: a prod stack called anything is gated, and a new stack is previewed.
    run = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "stacks", "--json"], capture_output=True, text=True, cwd=ROOT)
    rows = {r["stack"]: r for r in json.loads(run.stdout)}
    assert rows["aws-prod"] == {"stack": "aws-prod", "cloud": "aws", "region": "us-east-1", "environment": "prod", "inside_network": True}
    assert rows["gcp-dev"]["environment"] == "dev"
    workflow = (ROOT / ".github" / "workflows" / "preview.yml").read_text()
    assert "dragonfarm stacks --environment prod" in workflow and "fromJSON(needs.stacks.outputs.matrix)" in workflow
    assert "Pulumi.*-prod.yaml" not in workflow
