"""Every Kubernetes object the program emits is valid for the pinned Kubernetes version.

Core kinds: kubernetes-validate (strict, offline schemas of the pinned version). Custom resources:
the subset schemas in tests/schemas/crds.yaml. A kind with no schema fails, so nothing slips by.
"""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT, STACKS, planned

CRDS = yaml.safe_load((ROOT / "tests" / "schemas" / "crds.yaml").read_text())
NOT_OBJECTS = ("kubernetes:helm.sh/v3:Release",)


def objects(stack: str):
    plan = planned(stack)
    for r in plan.resources:
        if r.type.startswith("kubernetes:") and r.type not in NOT_OBJECTS:
            group_version, kind = r.type.removeprefix("kubernetes:").rsplit(":", 1)
            api_version = group_version.removeprefix("core/")
            yield r.name, {**r.inputs, "apiVersion": api_version, "kind": kind}


def pinned_version(stack: str) -> str:
    config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    return str(config.get("dragonfarm:breeding_ground", {}).get("kubernetes_version", "1.33")) + ".0"


K8S_STACKS = [s for s in STACKS if any(True for _ in objects(s))]


@pytest.mark.parametrize("stack", K8S_STACKS)
def test_every_object_matches_its_schema(stack):
    version = pinned_version(stack)
    checked = 0
    for name, obj in objects(stack):
        key = f"{obj['apiVersion']}/{obj['kind']}"
        if key in CRDS["kinds"]:
            schema = {**CRDS["kinds"][key], "definitions": CRDS["definitions"]}
            jsonschema.validate(obj.get("spec", {}), schema)
            jsonschema.validate(obj["metadata"], {"$ref": "#/definitions/metadata", "definitions": CRDS["definitions"]})
        else:
            kubernetes_validate.validate(obj, version, strict=True)
        # Label syntax is not in the OpenAPI schemas: checked on every object.
        jsonschema.validate(obj["metadata"].get("labels", {}), {"$ref": "#/definitions/labelMap", "definitions": CRDS["definitions"]})
        checked += 1
    assert checked > 0


def test_a_misspelled_custom_resource_field_is_caught():
    schema = {**CRDS["kinds"]["karpenter.sh/v1/NodePool"], "definitions": CRDS["definitions"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"template": {"spec": {"nodeClassRef": {"group": "g", "kind": "k", "name": "n"}, "requirements": []}},
                             "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAftr": "5m"}}, schema)


def test_a_bad_core_object_is_caught():
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                                      "spec": {"hardd": {}}}, "1.33.0", strict=True)


def test_an_invalid_label_is_caught():
    schema = {"$ref": "#/definitions/labelMap", "definitions": CRDS["definitions"]}
    jsonschema.validate({"dragonfarm.io/pool": "train-h100", "nvidia.com/gpu.present": "true", "team": ""}, schema)
    for bad in ({"dragonfarm.io/pool": "a" * 64}, {"dragonfarm.io/pool": "Ends-"}, {"bad key": "x"}, {"-x": "y"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.mark.parametrize("stack", ["aws-dev", "gcp-prod"])
def test_kueue_holds_unlabelled_jobs_in_team_namespaces_only(stack):
    # kueue v0.14.4 apis/config/v1beta1/configuration_types.go: manageJobsWithoutQueueName suspends jobs without the
    # queue label; managedJobsNamespaceSelector limits that to matching namespaces. The chart renders the YAML string
    # into its manager ConfigMap (charts/kueue/templates/manager/manager-config.yaml, `fromYaml`).
    (release,) = [r for r in planned(stack).of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kueue"]
    config = yaml.safe_load(release.inputs["values"]["managerConfig"]["controllerManagerConfigYaml"])
    assert (config["apiVersion"], config["kind"]) == ("config.kueue.x-k8s.io/v1beta1", "Configuration")
    assert config["manageJobsWithoutQueueName"] is True
    assert config["managedJobsNamespaceSelector"] == {"matchExpressions": [{"key": "dragonfarm.io/team", "operator": "Exists"}]}
    # The chart's service ports: webhook 9443, metrics 8443, health 8081 (values.yaml at v0.14.4).
    assert (config["webhook"]["port"], config["metrics"]["bindAddress"], config["health"]["healthProbeBindAddress"]) == (9443, ":8443", ":8081")
    teams = [r for r in planned(stack).of_type("kubernetes:core/v1:Namespace") if "dragonfarm.io/team" in r.inputs["metadata"]["labels"]]
    assert teams and "kube-system" not in {t.inputs["metadata"]["name"] for t in teams}
