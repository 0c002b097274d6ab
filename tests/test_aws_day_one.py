"""The AWS farm on its first real `pulumi up`: what the providers, charts and CRDs require, read from
their documentation, and what a team needs on day one. Each expected value cites where it comes from.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pulumi
import pytest
import yaml

from components.breeding_ground.gpu_stack import MAX_HELM_RELEASE_NAME
from tests.conftest import ROOT, plan_config, planned, stack_config

RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta1:ClusterQueue"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def one(plan, type_token, suffix):
    (found,) = [r for r in plan.of_type(type_token) if r.name.endswith(suffix)]
    return found


def statements(document: str) -> list[dict]:
    return json.loads(document)["Statement"]


def as_list(value):
    return value if isinstance(value, list) else [value]


# ---- would stop `pulumi up` -------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_every_helm_release_is_named_within_helms_limit(stack):
    # Without `name`, pulumi-kubernetes appends a random suffix to the release name; Helm refuses names
    # longer than 53 characters (helm/helm, ValidateReleaseName).
    releases = planned(stack).of_type(RELEASE)
    assert releases
    for release in releases:
        assert release.inputs.get("name"), release.name
        assert len(release.inputs["name"]) <= MAX_HELM_RELEASE_NAME == 53


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_gpu_daemonsets_run_only_on_gpu_nodes(stack):
    # dcgm-exporter's chart has an empty nodeSelector by default (it would land on CPU nodes and crash-loop);
    # every GPU pool's nodes carry nvidia.com/gpu.present=true (NodePool template and warm node group labels).
    plan = planned(stack)
    charts = {r.inputs["name"]: r.inputs["values"] for r in plan.of_type(RELEASE)}
    gpu_charts = [c for c in ("nvidia-device-plugin", "dcgm-exporter", "aws-efa-k8s-device-plugin") if c in charts]
    assert "dcgm-exporter" in gpu_charts
    for chart in gpu_charts:
        assert charts[chart]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}, chart
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in charts[chart]["tolerations"], chart
    for pool in plan.of_type(NODEPOOL):
        assert pool.inputs["spec"]["template"]["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"


def test_karpenter_nodes_can_use_the_farm_key_through_ec2():
    # Karpenter troubleshooting ("Node terminates before ready on failed encrypted EBS volume"): the key
    # policy must let the launching principal use the key via EC2, as AWS's own aws/ebs key policy does.
    (key,) = planned("aws-dev").of_type("aws:kms/key:Key")
    (ebs,) = [s for s in statements(key.inputs["policy"]) if s["Sid"] == "EbsThroughEc2"]
    assert {"kms:CreateGrant", "kms:GenerateDataKey*", "kms:Decrypt", "kms:DescribeKey"} <= set(ebs["Action"])
    assert ebs["Condition"]["StringEquals"] == {"kms:CallerAccount": "123456789012", "kms:ViaService": "ec2.us-east-1.amazonaws.com"}


def test_alerts_topic_uses_the_farm_key_which_admits_the_publishers():
    # Cost Anomaly Detection cannot publish to a topic under the AWS-managed key alias/aws/sns: the topic
    # uses the farm key, whose policy lets the service generate data keys and decrypt (ad-SNS).
    plan = planned("aws-dev")
    (topic,) = plan.of_type("aws:sns/topic:Topic")
    (key,) = plan.of_type("aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    (publishers,) = [s for s in statements(key.inputs["policy"]) if s["Sid"] == "AlertPublishers"]
    assert publishers["Principal"]["Service"] == "costalerts.amazonaws.com"
    assert set(publishers["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}


def test_kueue_covers_what_pods_request():
    # Kueue does not admit a workload requesting a resource its ClusterQueue does not cover; the team
    # ResourceQuota makes pods request CPU, and pods request memory: cover cpu, memory and GPUs (and EFA
    # where a pool has it: pods on EFA pools request vpc.amazonaws.com/efa).
    for stack, extra in (("aws-dev", []), ("aws-prod", ["vpc.amazonaws.com/efa"])):
        for queue in planned(stack).of_type(CLUSTER_QUEUE):
            (group,) = queue.inputs["spec"]["resourceGroups"]
            assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu", *extra]
            for flavor in group["flavors"]:  # every flavor lists every covered resource, in order (Kueue validation)
                assert [r["name"] for r in flavor["resources"]] == group["coveredResources"]


def test_dev_box_has_its_own_group_with_https_egress_only():
    # The fence empties the VPC default security group: a box left there has no egress and SSM cannot reach it.
    plan = planned("aws-dev")
    (box,) = plan.of_type("aws:ec2/instance:Instance")
    (group,) = plan.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert box.inputs["vpcSecurityGroupIds"] == [f"sg-{__import__('dragonfarm.mocks').mocks.digest(group.name)}"]
    assert "ingress" not in group.inputs and "egress" not in group.inputs  # no inline rules; AWS's allow-all egress is removed
    rules = plan.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert sorted((r.inputs["fromPort"], r.inputs["toPort"], r.inputs["ipProtocol"], r.inputs["cidrIpv4"]) for r in rules) == [
        (80, 80, "tcp", "0.0.0.0/0"), (443, 443, "tcp", "0.0.0.0/0")]
    assert plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == []


def test_karpenter_and_coredns_wait_for_nodes_and_networking():
    plan = planned("aws-dev")
    urn = lambda type_token, suffix: one(plan, type_token, suffix).urn
    karpenter = one(plan, RELEASE, "-karpenter")
    system = urn("aws:eks/nodeGroup:NodeGroup", "-system")
    for needed in (system, urn("aws:eks/addon:Addon", "-coredns"), urn("aws:eks/addon:Addon", "-vpc-cni"),
                   urn(ROLE_POLICY, "-karpenter-controller")):
        assert needed in karpenter.dependsOn, needed
    assert system in one(plan, "aws:eks/addon:Addon", "-coredns").dependsOn
    for release in plan.of_type(RELEASE):
        assert release.provider == urn("pulumi:providers:kubernetes", "-k8s"), release.name
        if release is not karpenter:
            assert karpenter.urn in release.dependsOn, release.name


def test_kubernetes_version_and_addons_come_from_the_dated_tables():
    plan = planned("aws-dev")
    addons = {a.inputs["addonName"]: a.inputs["addonVersion"] for a in plan.of_type("aws:eks/addon:Addon")}
    rows = [line.split(",") for line in (ROOT / "components/breeding_ground/addon_versions.csv").read_text().splitlines()[1:]]
    pinned = {addon: version for cloud, k8s, addon, version, *_ in rows if cloud == "aws" and k8s == "1.35"}
    assert addons == {k: v for k, v in pinned.items() if k != "node-ami"}
    assert addons["kube-proxy"].startswith("v1.35.")  # kube-proxy follows the cluster's minor version


def test_node_image_exists_for_the_cluster_version_and_is_the_same_everywhere():
    # awslabs/amazon-eks-ami CHANGELOG, AMI Release v20260714: the Kubernetes 1.35 images are
    # amazon-eks-node-al2023-x86_64-nvidia-1.35-v20260714 etc., release version 1.35.6-20260714. Karpenter
    # resolves alias al2023@v20260714 to /aws/service/eks/optimized-ami/1.35/amazon-linux-2023/.../*-v20260714;
    # the earlier pin, v20251108, predates EKS 1.35 (2026-01-27) and resolved to nothing: no GPU node launched.
    plan = planned("aws-prod")
    for node_class in plan.of_type(NODECLASS):
        assert node_class.inputs["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]
    groups = plan.of_type("aws:eks/nodeGroup:NodeGroup")
    assert len(groups) == 2  # system and the warm infer pool
    assert {g.inputs["releaseVersion"] for g in groups} == {"1.35.6-20260714"}


# ---- would deploy but not work -----------------------------------------------------------------------


def test_gpu_nodes_carry_the_farms_cost_tags():
    # Provider default tags never reach instances Karpenter launches: EC2NodeClass spec.tags does (Karpenter
    # docs, NodeClasses, "spec.tags": applied to instances, volumes and launch templates).
    for node_class in planned("aws-prod").of_type(NODECLASS):
        tags = node_class.inputs["spec"]["tags"]
        assert tags["dragonfarm-farm"] == "dfarm-aws-prod" and tags["cost-center"] == "ml-research"
        assert not any(k.startswith(("kubernetes.io/cluster/", "karpenter.sh/", "eks:")) for k in tags)  # keys Karpenter reserves


def test_team_network_policy_is_enforced_and_named_for_what_it_does():
    plan = planned("aws-dev")
    cni = one(plan, "aws:eks/addon:Addon", "-vpc-cni")
    # EKS user guide, "Limit pod traffic with Kubernetes network policies": the VPC CNI enforces NetworkPolicy
    # only with enableNetworkPolicy set in the add-on configuration.
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    policies = plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert {p.inputs["metadata"]["name"] for p in policies} == {"ingress-same-namespace-only"}
    for policy in policies:
        assert policy.inputs["spec"] == {"ingress": [{"from": [{"podSelector": {}}]}], "podSelector": {}, "policyTypes": ["Ingress"]}
        assert policy.aliases >= 1  # renamed from ...-default-deny without replacing it under Pulumi
    for ns in plan.of_type("kubernetes:core/v1:Namespace"):
        assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_kueue_one_queue_per_team_in_a_cohort_with_hand_computed_quotas():
    # aws-prod pools (gpu_catalog.csv): train-h100 = 4 x p5.48xlarge (8 H100, 192 vCPU, 2048 GiB, 32 EFA);
    # infer = 8 x g6.xlarge (1 L4, 4 vCPU, 16 GiB). research takes 32 GPUs from train-h100, serving 8 from infer.
    queues = {q.inputs["metadata"]["name"]: q.inputs["spec"] for q in planned("aws-prod").of_type(CLUSTER_QUEUE)}
    assert set(queues) == {"research", "serving"}  # everything is guaranteed: no lender queue
    quota = lambda q: {f["name"]: [r["nominalQuota"] for r in f["resources"]] for f in q["resourceGroups"][0]["flavors"]}
    assert quota(queues["research"]) == {"infer": [0, "0Mi", 0, 0],
                                         "train-h100": [4 * 192, f"{4 * 2048 * 1024}Mi", 32, 4 * 32]}
    assert quota(queues["serving"]) == {"infer": [8 * 4, f"{8 * 16 * 1024}Mi", 8, 0], "train-h100": [0, "0Mi", 0, 0]}
    for name, q in queues.items():
        assert q["cohort"] == "farm"
        assert q["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": name}}
        assert q["preemption"]["reclaimWithinCohort"] == "Any"


def test_a_team_without_a_quota_borrows_from_the_lender_queue(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:breeding_ground"]["teams"] = {"research": {"gpu_quota": 2, "pools": ["infer"]}, "adhoc": {}}
    queues = {q.inputs["metadata"]["name"]: q.inputs["spec"] for q in plan_config(config, tmp_path).of_type(CLUSTER_QUEUE)}
    gpus = lambda q: {f["name"]: f["resources"][2]["nominalQuota"] for f in q["resourceGroups"][0]["flavors"]}
    # 12 GPUs in all (train 2 x 4 A10G, infer 4 x 1 L4): research is guaranteed 2 L4, adhoc nothing, the lender the other 10.
    assert gpus(queues["research"]) == {"infer": 2, "train": 0}
    assert gpus(queues["adhoc"]) == {"infer": 0, "train": 0}
    assert gpus(queues["farm-shared"]) == {"infer": 2, "train": 8}
    assert "namespaceSelector" not in queues["farm-shared"]  # selects no namespace: it only lends


def test_one_flavor_per_pool_so_a_fallback_job_lands_on_either_capacity_type():
    flavors = {f.inputs["metadata"]["name"]: f.inputs["spec"]
               for f in planned("aws-prod").of_type("kubernetes:kueue.x-k8s.io/v1beta1:ResourceFlavor")}
    # A flavor selecting karpenter.sh/capacity-type=spot would pin an admitted job to spot nodes; selecting the
    # pool lets Karpenter fall back to on-demand within the spot-with-fallback NodePool.
    assert flavors == {key: {"nodeLabels": {"dragonfarm.io/pool": key},
                             "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
                       for key in ("infer", "train-h100")}


def test_efa_pool_is_pinned_to_one_zone_and_nodes_never_expire_by_default():
    pools = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in planned("aws-prod").of_type(NODEPOOL)}
    zone = [r for r in pools["train-h100"]["template"]["spec"]["requirements"] if r["key"] == "topology.kubernetes.io/zone"]
    assert zone == [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}]
    assert not any(r["key"] == "topology.kubernetes.io/zone" for r in pools["infer"]["template"]["spec"]["requirements"])
    assert {p["template"]["spec"]["expireAfter"] for p in pools.values()} == {"Never"}  # Karpenter v1 accepts "Never"


def test_expiry_is_a_pool_setting(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:breeding_ground"]["gpu_pools"]["infer"]["expire_after_hours"] = 168
    pool = one(plan_config(config, tmp_path), NODEPOOL, "-nodepool-infer")
    assert pool.inputs["spec"]["template"]["spec"]["expireAfter"] == "168h"


def test_karpenter_controller_is_scoped_to_its_own_cluster():
    # Karpenter's reference KarpenterControllerPolicy: creating, tagging and deleting instances, launch
    # templates and instance profiles requires this cluster's tags, so a dev controller cannot touch prod.
    policy = one(planned("aws-dev"), ROLE_POLICY, "-karpenter-controller")
    by_sid = {s["Sid"]: s for s in statements(policy.inputs["policy"])}
    cluster_tag = "kubernetes.io/cluster/dfarm-aws-dev-cluster"
    for sid in ("AllowScopedEC2InstanceActionsWithTags", "AllowScopedResourceCreationTagging"):
        assert by_sid[sid]["Condition"]["StringEquals"][f"aws:RequestTag/{cluster_tag}"] == "owned"
        assert by_sid[sid]["Condition"]["StringEquals"]["aws:RequestTag/eks:eks-cluster-name"] == "dfarm-aws-dev-cluster"
    for sid in ("AllowScopedDeletion", "AllowScopedEC2LaunchTemplateAccessActions", "AllowScopedResourceTagging"):
        assert by_sid[sid]["Condition"]["StringEquals"][f"aws:ResourceTag/{cluster_tag}"] == "owned"
    assert by_sid["AllowScopedInstanceProfileActions"]["Condition"]["StringEquals"][f"aws:ResourceTag/{cluster_tag}"] == "owned"


READ_ONLY = ("Describe", "Get", "List")


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_no_policy_the_farm_writes_allows_a_write_on_everything(stack, tmp_path):
    config = stack_config(stack)
    config["dragonfarm:ledger"]["hard_stop"] = True  # include the budget action's policy
    plan = plan_config(config, tmp_path)
    documents = [r.inputs["policy"] for r in plan.resources if r.type in (ROLE_POLICY, "aws:iam/policy:Policy")]
    assert len(documents) >= 5
    for document in documents:
        for statement in statements(document):
            if statement["Effect"] == "Allow" and "*" in as_list(statement["Resource"]):
                for action in as_list(statement["Action"]):
                    assert action.split(":")[1].startswith(READ_ONLY), (action, statement.get("Sid"))


def test_budget_action_role_may_only_touch_the_role_it_stops(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:ledger"]["hard_stop"] = True
    policy = one(plan_config(config, tmp_path), ROLE_POLICY, "-budget-action")
    (statement,) = statements(policy.inputs["policy"])
    assert statement["Resource"] == "arn:aws:iam::123456789012:role/dfarm-aws-dev-cluster-karpenter-controller"


# ---- what a team needs on day one --------------------------------------------------------------------


def test_people_get_access_entries_admins_cluster_wide_members_in_their_namespace():
    plan = planned("aws-dev")
    entries = {e.inputs["principalArn"]: e for e in plan.of_type("aws:eks/accessEntry:AccessEntry") if e.inputs["type"] == "STANDARD"}
    assert set(entries) == {"arn:aws:iam::123456789012:role/ml-platform-admins", "arn:aws:iam::123456789012:role/research-engineers",
                            "arn:aws:iam::123456789012:role/serving-engineers"}
    associations = {(a.inputs["principalArn"].rsplit("/", 1)[1], a.inputs["policyArn"].rsplit("/", 1)[1]): a.inputs["accessScope"]
                    for a in plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    assert associations == {
        ("ml-platform-admins", "AmazonEKSClusterAdminPolicy"): {"type": "cluster"},
        ("research-engineers", "AmazonEKSEditPolicy"): {"type": "namespace", "namespaces": ["research"]},
        ("serving-engineers", "AmazonEKSEditPolicy"): {"type": "namespace", "namespaces": ["serving"]},
    }


def test_a_principal_in_two_teams_has_one_entry(tmp_path):
    config = stack_config("aws-dev")
    both = "arn:aws:iam::123456789012:role/research-engineers"
    config["dragonfarm:breeding_ground"]["teams"]["serving"]["members"] = [both]
    plan = plan_config(config, tmp_path)
    assert [e.inputs["principalArn"] for e in plan.of_type("aws:eks/accessEntry:AccessEntry")].count(both) == 1  # EKS: one entry per principal
    (edit,) = [a for a in plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation") if a.inputs["principalArn"] == both]
    assert edit.inputs["accessScope"] == {"type": "namespace", "namespaces": ["research", "serving"]}


def bucket(stack: str, key: str) -> str:
    # Bucket names carry a digest of the account id (mock account 123456789012): global S3 names cannot collide.
    return f"{stack.replace('aws', 'dfarm-aws')}-{key}-{hashlib.sha256(b'123456789012').hexdigest()[:8]}"


def test_bucket_names_are_unique_per_account():
    names = {b.inputs["bucket"] for b in planned("aws-dev").of_type("aws:s3/bucket:Bucket")}
    assert names == {bucket("aws-dev", k) for k in ("datasets", "checkpoints", "models", "logs")}
    assert all(3 <= len(n) <= 63 for n in names)


def test_each_team_workload_gets_least_privilege_on_its_troughs():
    plan = planned("aws-dev")
    identities = {i.inputs["namespace"]: i.inputs for i in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert identities["research"]["serviceAccount"] == identities["serving"]["serviceAccount"] == "workload"
    research = {s["Sid"]: s for s in statements(one(plan, ROLE_POLICY, "-team-research-troughs").inputs["policy"])}
    arn = lambda key: f"arn:aws:s3:::{bucket('aws-dev', key)}"
    # Default by purpose: datasets and models read, checkpoints and logs read-write.
    assert sorted(research["List"]["Resource"]) == sorted(arn(k) for k in ("datasets", "checkpoints", "models", "logs"))
    assert sorted(research["Write"]["Resource"]) == sorted(f"{arn(k)}/*" for k in ("checkpoints", "logs"))
    assert research["FarmKeyThroughS3"]["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    # serving lists only models (read) and logs (read-write).
    serving = {s["Sid"]: s for s in statements(one(plan, ROLE_POLICY, "-team-serving-troughs").inputs["policy"])}
    assert sorted(serving["List"]["Resource"]) == sorted([arn("models"), arn("logs")])
    assert serving["Write"]["Resource"] == [f"{arn('logs')}/*"]
    accounts = {sa.inputs["metadata"]["namespace"]: sa.inputs["metadata"]["name"]
                for sa in plan.of_type("kubernetes:core/v1:ServiceAccount")}
    assert accounts == {"research": "workload", "serving": "workload"}


def test_dev_box_gets_the_same_kind_of_grant():
    box = {s["Sid"]: s for s in statements(one(planned("aws-dev"), ROLE_POLICY, "-devbox-troughs").inputs["policy"])}
    assert len(box["List"]["Resource"]) == 4 and len(box["Write"]["Resource"]) == 2


def test_stack_exports_what_a_user_needs_next(tmp_path, monkeypatch):
    exported = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))
    plan_config(stack_config("aws-dev"), tmp_path)
    assert {"cluster_name", "cluster_endpoint", "cluster_certificate_authority", "kubeconfig", "kubeconfig_command",
            "buckets", "dev_boxes", "alerts_topic"} <= set(exported)
    assert isinstance(exported["kubeconfig"], pulumi.Output)


def test_warm_nodes_are_a_node_group_below_karpenter():
    plan = planned("aws-prod")
    warm = one(plan, "aws:eks/nodeGroup:NodeGroup", "-warm-infer")
    # EKS NodeGroup API: amiType AL2023_x86_64_NVIDIA for GPU instances; taint effects are NO_SCHEDULE etc.
    assert warm.inputs["amiType"] == "AL2023_x86_64_NVIDIA" and warm.inputs["capacityType"] == "ON_DEMAND"
    assert warm.inputs["scalingConfig"] == {"desiredSize": 1, "maxSize": 1, "minSize": 1}
    assert warm.inputs["instanceTypes"] == ["g6.xlarge", "g6.2xlarge", "g6.4xlarge"]
    assert warm.inputs["labels"] == {"dragonfarm.io/pool": "infer", "nvidia.com/gpu.present": "true"}
    assert warm.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    pool = one(plan, NODEPOOL, "-nodepool-infer")
    assert pool.inputs["spec"]["limits"] == {"nvidia.com/gpu": "7"}  # max_nodes 8 - 1 warm, 1 GPU each


def test_existing_vpc_subnets_are_tagged_for_karpenter(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:fence"] = {"existing_network": {"network_id": "vpc-0abc12345",
                                                       "private_subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"]}}
    tags = plan_config(config, tmp_path).of_type("aws:ec2/tag:Tag")
    assert sorted((t.inputs["resourceId"], t.inputs["key"], t.inputs["value"]) for t in tags) == [
        ("subnet-0aaa1111", "karpenter.sh/discovery", "dfarm-aws-dev"), ("subnet-0bbb2222", "karpenter.sh/discovery", "dfarm-aws-dev")]


# ---- the sample job the README submits -------------------------------------------------------------------


def test_sample_job_is_valid_and_fits_the_farm():
    job = yaml.safe_load((ROOT / "examples" / "team-job.yaml").read_text())
    kubernetes_validate.validate(job, "1.35.0", strict=True)
    plan = planned("aws-dev")
    namespace = job["metadata"]["namespace"]
    queue = job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
    local_queues = {(q.inputs["metadata"]["namespace"], q.inputs["metadata"]["name"])
                    for q in plan.of_type("kubernetes:kueue.x-k8s.io/v1beta1:LocalQueue")}
    assert (namespace, queue) in local_queues
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "workload" and job["spec"]["suspend"] is True
    (cq,) = [q for q in plan.of_type(CLUSTER_QUEUE) if q.inputs["metadata"]["name"] == namespace]
    covered = set(cq.inputs["spec"]["resourceGroups"][0]["coveredResources"])
    (container,) = pod["containers"]
    assert set(container["resources"]["requests"]) <= covered and "cpu" in container["resources"]["requests"]
    assert "s3://DATASETS_BUCKET/" in container["command"]


# ---- the idle watcher, run for real ---------------------------------------------------------------------


def watcher(tmp_path: Path, gpu: str, load: str, who: str = "", minutes: int = 3) -> list[Path]:
    """Run the watcher `minutes` times with fake nvidia-smi/who/pgrep; returns the stop marker if it fired."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool, out in (("nvidia-smi", gpu), ("who", who), ("nproc", "4"), ("pgrep", "0")):
        (bin_dir / tool).write_text(f"#!/bin/sh\nprintf '%s\\n' '{out}'\n")
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "loadavg").write_text(f"{load} 0.10 0.10 1/100 1000\n")
    marker = tmp_path / "stopped"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "IDLE_MINUTES": "3", "STATE_DIR": str(tmp_path / "state"),
           "LOADAVG_FILE": str(tmp_path / "loadavg"), "STOP_COMMAND": f"touch {marker}"}
    for _ in range(minutes):
        subprocess.run(["bash", str(ROOT / "components/barn/idle_watch.sh")], env=env, check=True)
    return [marker] if marker.exists() else []


def test_idle_box_is_stopped_after_idle_minutes(tmp_path):
    assert watcher(tmp_path, gpu="0\n3\n", load="0.05", minutes=2) == []
    assert watcher(tmp_path, gpu="0\n3\n", load="0.05", minutes=1) != []  # the third idle minute stops it


def test_busy_gpu_with_an_idle_cpu_keeps_the_box(tmp_path):
    # The defect the CPU-only alarm had: a GPU job with one busy core looks idle to CPU metrics.
    assert watcher(tmp_path, gpu="0\n97\n", load="0.05", minutes=5) == []


def test_a_logged_in_user_keeps_the_box(tmp_path):
    assert watcher(tmp_path, gpu="0", load="0.0", who="ana pts/0 2026-11-24 10:00", minutes=5) == []


def test_busy_cpu_keeps_the_box(tmp_path):
    assert watcher(tmp_path, gpu="0", load="2.00", minutes=5) == []  # 2 of 4 cores busy = 50 %


def test_dev_box_installs_the_watcher_and_has_a_nightly_backstop():
    plan = planned("aws-dev")
    (box,) = plan.of_type("aws:ec2/instance:Instance")
    assert box.inputs["instanceType"] == "g4dn.xlarge"
    assert box.inputs["associatePublicIpAddress"] is False
    assert box.inputs["metadataOptions"]["httpTokens"] == "required"
    # EC2 User Guide, instance metadata options: with IMDSv2 a container on the default bridge network is one
    # hop further away; hop limit 2 lets a notebook in Docker get the box's role credentials for the buckets.
    assert box.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 2
    assert box.inputs["rootBlockDevice"]["encrypted"] is True
    assert box.inputs["rootBlockDevice"]["tags"]["dragonfarm-farm"] == "dfarm-aws-dev"
    # A guest power-off stops (does not terminate) the instance: EC2 InstanceInitiatedShutdownBehavior "stop".
    assert box.inputs["instanceInitiatedShutdownBehavior"] == "stop"
    assert "Environment=IDLE_MINUTES=60" in box.inputs["userData"]
    assert 'Environment="STOP_COMMAND=systemctl poweroff"' in box.inputs["userData"]
    assert (ROOT / "components/barn/idle_watch.sh").read_text().rstrip("\n") in box.inputs["userData"]
    assert plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") == []  # the CPU-only stop is gone
    (schedule,) = plan.of_type("aws:scheduler/schedule:Schedule")
    # EventBridge Scheduler: cron(minutes hours day-of-month month day-of-week year); universal target ec2:stopInstances.
    # Default time zone: the region's (us-east-1 is in Northern Virginia: America/New_York), so 21:00 is evening there.
    assert schedule.inputs["scheduleExpression"] == "cron(0 21 * * ? *)"
    assert schedule.inputs["scheduleExpressionTimezone"] == "America/New_York"
    assert schedule.inputs["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
    assert json.loads(schedule.inputs["target"]["input"]) == {"InstanceIds": [f"i-{__import__('dragonfarm.mocks').mocks.digest(box.name)}"]}


def test_only_this_accounts_anomaly_alerts_may_publish_and_budget_mail_arrives_once():
    # Cost Management user guide, ad-SNS: costalerts.amazonaws.com with aws:SourceAccount. Budget alerts
    # e-mail the addresses directly (no SNS confirmation needed): they no longer also go through the topic,
    # which e-mails the same people, so each alert arrives once.
    plan = planned("aws-dev")
    (policy,) = plan.of_type("aws:sns/topicPolicy:TopicPolicy")
    (statement,) = statements(policy.inputs["policy"])
    assert statement["Principal"] == {"Service": "costalerts.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    (budget,) = plan.of_type("aws:budgets/budget:Budget")
    for notification in budget.inputs["notifications"]:
        assert notification["subscriberEmailAddresses"] == ["ml-platform@example.com"]
        assert "subscriberSnsTopicArns" not in notification
    # Anomaly subscriptions check at creation that they may publish: created after the topic policy.
    (subscription,) = plan.of_type("aws:costexplorer/anomalySubscription:AnomalySubscription")
    assert policy.urn in subscription.dependsOn


def test_service_roles_trust_only_this_account_and_flow_logs_can_find_their_group():
    # IAM User Guide, cross-service confused deputy prevention (aws:SourceAccount); VPC User Guide, "IAM role
    # for publishing flow logs to CloudWatch Logs": the policy needs logs:DescribeLogGroups as well.
    plan = planned("aws-dev")
    roles = {r.name: r for r in plan.of_type("aws:iam/role:Role")}
    for name in ("dfarm-aws-dev-fence-flow-logs", "dfarm-aws-dev-devbox-nightly-stop"):
        (trust,) = statements(roles[name].inputs["assumeRolePolicy"])
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}, name
    flow = next(p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "dfarm-aws-dev-fence-flow-logs")
    by_sid = {s["Sid"]: s for s in statements(flow.inputs["policy"])}
    assert by_sid["FindLogGroups"] == {"Sid": "FindLogGroups", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"}
    assert {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"} == set(by_sid["WriteFlowLogs"]["Action"])


CHART_KEYS = yaml.safe_load((ROOT / "tests" / "schemas" / "chart_values.yaml").read_text())


def value_paths(values, prefix=""):
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from value_paths(value, path + ".")
        else:
            yield path


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_every_helm_value_is_a_key_the_chart_documents(stack):
    for release in planned(stack).of_type(RELEASE):
        documented = CHART_KEYS[release.inputs["name"]]
        for path in value_paths(release.inputs.get("values", {})):
            assert any(path == key or (key.endswith(".*") and (path == key[:-2] or path.startswith(key[:-1])))
                       for key in documented), (release.name, path)


def test_karpenter_replicas_fit_the_system_nodes_and_know_the_region():
    # Chart default: 2 replicas with required pod anti-affinity on kubernetes.io/hostname; the system node group
    # does not scale itself, so aws-dev's single system node can hold one replica only.
    dev = one(planned("aws-dev"), RELEASE, "-karpenter").inputs["values"]
    prod = one(planned("aws-prod"), RELEASE, "-karpenter").inputs["values"]
    assert (dev["replicas"], prod["replicas"]) == (1, 2)
    assert dev["controller"]["env"] == [{"name": "AWS_REGION", "value": "us-east-1"}]


@pytest.mark.parametrize("instance_type, ami_type", [
    ("m7i.large", "AL2023_x86_64_STANDARD"), ("m7g.large", "AL2023_ARM_64_STANDARD"), ("m7g.xlarge", "AL2023_ARM_64_STANDARD"),
    ("t3.large", "AL2023_x86_64_STANDARD"),
])
def test_system_pool_ami_type_follows_the_instance_architecture(instance_type, ami_type, tmp_path):
    # EKS NodeGroup amiType: AL2023_ARM_64_STANDARD for Graviton (m7g: arm64 in the SkyPilot AWS catalog's Arch
    # column), AL2023_x86_64_STANDARD otherwise. An arm64 node on an x86_64 image never joins.
    config = stack_config("aws-dev")
    config["dragonfarm:breeding_ground"]["system_pool"] = {"instance_type": instance_type}
    groups = {g.name: g for g in plan_config(config, tmp_path).of_type("aws:eks/nodeGroup:NodeGroup")}
    system = groups["dfarm-aws-dev-cluster-system"]
    assert system.inputs["amiType"] == ami_type and system.inputs["instanceTypes"] == [instance_type]


def test_a_team_queue_tries_its_own_pool_before_borrowing_another():
    # Kueue ClusterQueue flavorFungibility (v0.14.4): whenCanBorrow defaults to Borrow, which admits a job into the
    # first flavor it can borrow in: a research job asking for 4 GPUs per pod went into `infer` (1-GPU nodes) on
    # serving's idle quota and could never be scheduled. Own pools first; whenCanPreempt Preempt so a team takes
    # its lent-out pool back instead of spilling to another (the default TryNextFlavor ranks a borrowing fit
    # above reclaiming: flavorassigner.go isPreferred, feature gate FlavorFungibilityImplicitPreferenceDefault off).
    queues = {q.inputs["metadata"]["name"]: q.inputs["spec"] for q in planned("aws-dev").of_type(CLUSTER_QUEUE)}
    assert [f["name"] for f in queues["research"]["resourceGroups"][0]["flavors"]] == ["train", "infer"]
    assert [f["name"] for f in queues["serving"]["resourceGroups"][0]["flavors"]] == ["infer", "train"]
    for name in ("research", "serving"):
        assert queues[name]["flavorFungibility"] == {"whenCanBorrow": "TryNextFlavor", "whenCanPreempt": "Preempt"}


def test_team_cpu_cap_defaults_to_what_the_gpu_pools_supply():
    # aws-dev: train = 2 x g5.12xlarge (48 vCPUs each: EC2 accelerated computing specs) = 96, infer = 4 x
    # g6.xlarge (4 vCPUs) = 16: 112 CPUs. The old default, 64, refused pods of jobs Kueue had admitted.
    quotas = {q.inputs["metadata"]["namespace"]: q.inputs["spec"]["hard"]
              for q in planned("aws-dev").of_type("kubernetes:core/v1:ResourceQuota")}
    assert quotas["research"]["requests.cpu"] == "112" and quotas["serving"]["requests.cpu"] == "112"


def test_gpu_nodes_are_force_drained_after_a_day_so_destroy_cannot_hang():
    # Karpenter v1 NodePool spec.template.spec.terminationGracePeriod (pattern ^([0-9]+(s|m|h))+$): "if left
    # undefined, the controller will wait indefinitely for pods to be drained" - a blocking PDB would keep a
    # GPU node (and its bill) alive through `pulumi destroy`.
    # The same field drains drifted nodes through do-not-disrupt: a node-image bump would kill jobs older than a
    # day. A budget of 0 nodes for reason Drifted (v1 NodePool disruption.budgets; reasons Underutilized, Empty,
    # Drifted) leaves drifted nodes until they are empty.
    for pool in planned("aws-prod").of_type(NODEPOOL):
        assert pool.inputs["spec"]["template"]["spec"]["terminationGracePeriod"] == "24h"
        assert pool.inputs["spec"]["disruption"]["budgets"] == [{"nodes": "0", "reasons": ["Drifted"]}]


@pytest.mark.parametrize("caller, principal, same", [
    # IAM User Guide, IAM identifiers: a role session is arn:aws:sts::<account>:assumed-role/<role-name>/<session>
    # (no path); the role itself arn:aws:iam::<account>:role/<path>/<role-name>.
    ("arn:aws:sts::123456789012:assumed-role/ml-platform-admins/alice", "arn:aws:iam::123456789012:role/ml-platform-admins", True),
    ("arn:aws:sts::123456789012:assumed-role/ml-platform-admins/ci", "arn:aws:iam::123456789012:role/teams/ml-platform-admins", True),
    ("arn:aws:sts::123456789012:assumed-role/ml-platform-admins/ci", "arn:aws:iam::210987654321:role/ml-platform-admins", False),
    ("arn:aws:sts::123456789012:assumed-role/ml-platform/ci", "arn:aws:iam::123456789012:role/ml-platform-admins", False),
    ("arn:aws:iam::123456789012:user/dragonfarm", "arn:aws:iam::123456789012:user/dragonfarm", True),
    ("arn:aws:iam::123456789012:user/dragonfarm", "arn:aws:iam::123456789012:role/dragonfarm", False),
])
def test_the_deploying_identity_is_recognised_behind_a_role_session(caller, principal, same):
    from components.breeding_ground.aws import same_principal
    assert same_principal(caller, principal) is same


def test_the_cluster_admits_only_listed_people_and_the_deployer_must_be_one_of_them():
    # EKS access entries: with bootstrapClusterCreatorAdminPermissions the creator gets an entry of its own, and
    # listing it again fails with ResourceInUseException (terraform-aws-modules/terraform-aws-eks issue 3293);
    # keyed to the creator, access would also change with whoever first ran `pulumi up`. Off: access is exactly
    # the stack's admins and members, and the in-cluster stack waits for the admins' policy associations.
    from blueprints import build
    from blueprints.config import load_farm
    from dragonfarm.plan import record

    plan = planned("aws-dev")
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    (provider,) = plan.of_type("pulumi:providers:kubernetes")
    admin = one(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "-admin")
    assert admin.urn in provider.dependsOn
    # The offline plan runs as a session of the first admin; anyone else is refused before anything is built.
    farm = load_farm(stack_config("aws-dev"), source="aws-dev")
    with pytest.raises(pulumi.RunError) as info:
        record(lambda: build(farm), cloud="aws", region="us-east-1", stack="aws-dev",
               caller="arn:aws:sts::123456789012:assumed-role/ci-deployer/run-42")
    assert str(info.value) == (
        "dragonfarm:breeding_ground.admins: got arn:aws:iam::123456789012:role/ml-platform-admins; allowed: a list including "
        "the identity running pulumi up (arn:aws:sts::123456789012:assumed-role/ci-deployer/run-42): the cluster admits only "
        "listed admins, and the program installs the in-cluster stack as that identity")
