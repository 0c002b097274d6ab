"""The Azure blueprint's breeding ground: AKS cluster, agent pools, priority expander, Kueue, people and cost.

Expected values come from the AKS documentation named at each test (MicrosoftDocs/azure-aks-docs at fb060abe)
and catalog rows quoted in the test.
"""

from __future__ import annotations

import re

import pytest
import yaml

from dragonfarm.cost import estimate
from tests.conftest import plan_config, planned, stack_config

CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"


def network_role_scope_is_the_vnet() -> bool:
    # AKS "Private clusters": the cluster identity links the private DNS zone to the VNet: Network Contributor on the VNet.
    (role,) = [r for r in planned("azure-dev").of_type("azure-native:authorization:RoleAssignment") if r.name.endswith("-network")]
    return role.inputs["scope"].endswith("/virtualNetworks/dfarm-az-dev-fence-vnet")


def cluster(plan) -> dict:
    (found,) = plan.of_type(CLUSTER)
    return found.inputs


def fallback_plan(tmp_path):
    config = stack_config("azure-dev")
    bg = config["dragonfarm:breeding_ground"]
    bg["gpu_pools"]["train-a100"] = {"gpu": "a100-80gb", "gpus_per_node": 1, "capacity": "spot-with-fallback", "max_nodes": 2}
    return plan_config(config, tmp_path)


def test_cluster_access_identity_and_network():
    inputs = cluster(planned("azure-dev"))
    # deploy_from internet: a public API limited to the authorized ranges (AKS "API server authorized IP ranges").
    # The nodes reach a public API from the NAT gateway's address, which must be authorized too (AKS adds only a load
    # balancer's outbound IP by itself); the mocks give the NAT IP an address.
    ranges = inputs["apiServerAccessProfile"]["authorizedIPRanges"]
    assert inputs["apiServerAccessProfile"]["enablePrivateCluster"] is False
    assert ranges[0] == "203.0.113.0/24" and re.fullmatch(r"52\.0\.\d+\.\d+/32", ranges[1]) and len(ranges) == 2
    assert network_role_scope_is_the_vnet()
    # Entra ID with Azure RBAC, no local accounts (AKS "Entra ID authorization", "Manage local accounts").
    assert inputs["aadProfile"] == {"managed": True, "enableAzureRBAC": True} and inputs["disableLocalAccounts"] is True
    assert inputs["oidcIssuerProfile"] == {"enabled": True} and inputs["securityProfile"]["workloadIdentity"] == {"enabled": True}
    network = inputs["networkProfile"]
    # Azure CNI overlay with Cilium (AKS "Azure CNI powered by Cilium"); the DNS address inside the service range.
    assert (network["networkPlugin"], network["networkPluginMode"], network["networkDataplane"], network["networkPolicy"]) == \
        ("azure", "overlay", "cilium", "cilium")
    assert network["serviceCidr"] == "10.96.0.0/16" and network["dnsServiceIP"] == "10.96.0.10" and network["podCidr"] == "10.64.0.0/14"
    assert network["outboundType"] == "userAssignedNATGateway"
    # Node images only; the minor stays as pinned.
    # The node-image upgrade channel is legacy (AKS "Automatically upgrade a cluster"): none, and node OS images.
    assert inputs["autoUpgradeProfile"] == {"upgradeChannel": "none", "nodeOSUpgradeChannel": "NodeImage"}
    assert inputs["kubernetesVersion"] == "1.35" and inputs["sku"] == {"name": "Base", "tier": "Free"}


def test_system_pool_is_tainted_critical_addons_only_and_autoscales():
    (system,) = cluster(planned("azure-dev"))["agentPoolProfiles"]
    assert (system["name"], system["mode"], system["vmSize"]) == ("system", "System", "Standard_D4s_v5")
    # AKS "Manage system node pools": CriticalAddonsOnly=true:NoSchedule keeps application pods off.
    assert system["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"]
    assert (system["enableAutoScaling"], system["minCount"], system["maxCount"]) == (True, 1, 3)
    assert system["availabilityZones"] == ["1", "2"]


def test_spot_gpu_pool_scales_from_zero_and_declares_the_spot_taint():
    (pool,) = planned("azure-dev").of_type(AGENT_POOL)
    inputs = pool.inputs
    # Catalog: Standard_NC4as_T4_v3 is the smallest 1 x T4 size.
    assert inputs["vmSize"] == "Standard_NC4as_T4_v3" and inputs["mode"] == "User"
    # AKS "Add a spot node pool": priority Spot, eviction Delete, max price -1; AKS labels and taints spot pools.
    assert (inputs["scaleSetPriority"], inputs["scaleSetEvictionPolicy"], inputs["spotMaxPrice"]) == ("Spot", "Delete", -1)
    assert SPOT_TAINT in inputs["nodeTaints"] and "nvidia.com/gpu=true:NoSchedule" in inputs["nodeTaints"]
    assert inputs["nodeLabels"]["kubernetes.azure.com/scalesetpriority"] == "spot"
    assert inputs["nodeLabels"]["dragonfarm.io/capacity"] == "spot" and inputs["nodeLabels"]["dragonfarm.io/pool"] == "t4"
    # User pools may autoscale to zero (AKS "Scale the node count").
    assert (inputs["enableAutoScaling"], inputs["minCount"], inputs["maxCount"]) == (True, 0, 4)
    assert inputs["gpuProfile"] == {"driver": "Install"}


def test_every_gpu_toleration_tolerates_the_aks_spot_taint():
    plan = planned("azure-dev")
    spot = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}
    for flavor in plan.of_type("kubernetes:kueue.x-k8s.io/v1beta1:ResourceFlavor"):
        assert spot in flavor.inputs["spec"]["tolerations"], flavor.name
    releases = {r.inputs["name"]: r.inputs["values"] for r in plan.of_type("kubernetes:helm.sh/v3:Release")}
    # AKS installs the NVIDIA driver, not the device plugin (AKS "Use NVIDIA GPUs"): the farm installs it, and DCGM.
    for chart in ("nvidia-device-plugin", "dcgm-exporter"):
        assert spot in releases[chart]["tolerations"], chart
        assert releases[chart]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    # Kueue runs on the system pool, which only tolerating pods reach.
    assert releases["kueue"]["controllerManager"]["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]


def test_fallback_pool_is_a_spot_and_a_regular_pool_with_the_priority_expander(tmp_path):
    plan = fallback_plan(tmp_path)
    pools = {p.inputs["agentPoolName"]: p.inputs for p in plan.of_type(AGENT_POOL)}
    assert pools["traina100s"]["scaleSetPriority"] == "Spot" and pools["traina100r"]["scaleSetPriority"] == "Regular"
    assert all(re.fullmatch(r"[a-z][a-z0-9]{0,11}", name) for name in pools)  # AKS: Linux pool names 1-12, lowercase alphanumeric
    assert cluster(plan)["autoScalerProfile"]["expander"] == "priority"
    (config_map,) = plan.of_type("kubernetes:core/v1:ConfigMap")
    assert config_map.inputs["metadata"] == {"name": "cluster-autoscaler-priority-expander", "namespace": "kube-system"}
    priorities = yaml.safe_load(config_map.inputs["data"]["priorities"])
    # Highest number wins (kubernetes/autoscaler expander/priority readme); AKS node groups are aks-<pool>-<digits>-vmss.
    assert max(priorities) == 20 and any(re.fullmatch(p, "aks-traina100s-12345678-vmss") for p in priorities[20])
    assert any(re.fullmatch(p, "aks-traina100r-12345678-vmss") for p in priorities[10])
    assert not any(re.fullmatch(p, "aks-traina100r-12345678-vmss") for p in priorities[20])


def test_people_get_azure_rbac_roles_and_teams_a_federated_identity():
    plan = planned("azure-dev")
    assignments = plan.of_type("azure-native:authorization:RoleAssignment")
    # Built-in role ids (Azure built-in roles): AKS RBAC Cluster Admin, AKS RBAC Writer.
    admin = [a for a in assignments if a.inputs["roleDefinitionId"].endswith("b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b")]
    # The principal type travels with the id (the API refuses a mismatch; the SDK would say User for a group).
    assert [(a.inputs["principalId"], a.inputs["principalType"]) for a in admin] == [("00000000-0000-4000-8000-0000000000a1", "User")]
    prod = {a.inputs["principalId"][-2:]: a.inputs["principalType"] for a in planned("azure-prod").of_type("azure-native:authorization:RoleAssignment")
            if a.inputs["roleDefinitionId"].endswith("b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b")}
    assert prod == {"a1": "ServicePrincipal", "d4": "Group"}
    writer = [a for a in assignments if a.inputs["roleDefinitionId"].endswith("a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb")]
    assert len(writer) == 1 and writer[0].inputs["scope"].endswith("/namespaces/research")
    (credential,) = plan.of_type("azure-native:managedidentity:FederatedIdentityCredential")
    # AKS workload identity: subject system:serviceaccount:<ns>:<sa>, audience api://AzureADTokenExchange.
    assert credential.inputs["subject"] == "system:serviceaccount:research:workload"
    assert credential.inputs["audiences"] == ["api://AzureADTokenExchange"]
    blob = [a for a in assignments if "-team-research-trough-" in a.name]
    # Default access by purpose: datasets read, checkpoints and logs read-write, each on its container only.
    roles = {a.name.rsplit("-", 1)[1]: a.inputs["roleDefinitionId"][-36:] for a in blob}
    assert roles == {"data": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", "ckpt": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                     "logs": "ba92f5b4-2d11-453d-a403-e96b0029c9fe"}
    # Container scope: .../storageAccounts/<account>/blobServices/default/containers/data.
    assert sorted(a.inputs["scope"].split("/storageAccounts/")[1] for a in blob) == [
        f"dfarmazdev{t}/blobServices/default/containers/data" for t in ("ckpt", "data", "logs")]


def test_pool_names_aks_would_refuse_or_merge_are_refused_at_load():
    from blueprints.config import ConfigError, load_farm

    config = stack_config("azure-dev")
    config["dragonfarm:breeding_ground"]["gpu_pools"]["t-4"] = {"gpu": "t4"}
    with pytest.raises(ConfigError) as info:
        load_farm(config, source="s.yaml")
    assert info.value.lines() == ["s.yaml: dragonfarm:breeding_ground.gpu_pools.t-4: got 't-4'; allowed: a pool name whose azure node "
                                  "group name (t4) differs from pool t4's: AKS agent pool names are the key without hyphens, at most "
                                  "12 characters"]


def test_the_identity_running_pulumi_up_must_be_an_admin():
    import pulumi

    from blueprints import build
    from blueprints.config import load_farm
    from dragonfarm.plan import record

    farm = load_farm(stack_config("azure-dev"), source="azure-dev")
    with pytest.raises(pulumi.RunError) as info:
        record(lambda: build(farm), cloud="azure", region="eastus", stack="azure-dev", caller="99999999-0000-4000-8000-000000000000")
    assert str(info.value).startswith("dragonfarm:breeding_ground.admins: got user:00000000-0000-4000-8000-0000000000a1; allowed: a list "
                                      "including the Entra object id running pulumi up (99999999-0000-4000-8000-000000000000)")


def test_cost_prices_the_tier_the_system_pool_and_every_gpu_pool(tmp_path):
    lines = {line.name: line for line in estimate(planned("azure-dev")).lines}
    # compute.csv eastus (SkyPilot v6 azure at 098741e7): Standard_D4s_v5 0.192 on demand, Standard_NC4as_T4_v3 spot
    # 0.062699; fees.csv eastus block_storage 0.075 per GB-month. Free tier: no cluster fee; one system node all month
    # with a 64 GB disk; 300 T4 node-hours with 200 GB disks.
    assert lines["dfarm-az-dev-cluster"].monthly == pytest.approx(730 * 0.192 + 64 * 0.075, abs=0.01)
    assert lines["dfarm-az-dev-cluster-t4"].monthly == pytest.approx(300 * (0.062699 + 200 * 0.075 / 730), abs=0.01)
    prod = stack_config("azure-dev")
    prod["dragonfarm:environment"] = "prod"
    standard = {line.name: line for line in estimate(plan_config(prod, tmp_path)).lines}
    # AKS Standard tier: 0.10 per cluster-hour (fees.csv) on top of the system pool.
    assert standard["dfarm-az-dev-cluster"].monthly == pytest.approx(lines["dfarm-az-dev-cluster"].monthly + 73.0, abs=0.01)


def test_the_kubeconfig_logs_in_with_the_azure_cli_not_a_device_code():
    from components.breeding_ground.azure import azure_cli_login

    # What listClusterUserCredential(format=exec) returns: kubelogin with --login devicecode (pulumi-azure-native#2399).
    returned = yaml.safe_dump({"users": [{"name": "u", "user": {"exec": {"command": "kubelogin", "args": [
        "get-token", "--login", "devicecode", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]}}}]})
    args = yaml.safe_load(azure_cli_login(returned))["users"][0]["user"]["exec"]["args"]
    assert args == ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]


def test_agent_pools_are_created_one_at_a_time_on_the_pinned_version(tmp_path):
    plan = fallback_plan(tmp_path)
    pools = plan.of_type(AGENT_POOL)
    assert all(p.inputs["orchestratorVersion"] == "1.35" for p in pools)
    # AKS refuses a second agent pool operation while one runs (409): each pool waits for the one before.
    urns = {p.urn for p in pools}
    waits = {p.name: [u for u in p.dependsOn if u in urns] for p in pools}
    assert sorted(len(w) for w in waits.values()) == [0, 1, 1]  # a chain: the first waits for none, the others for one each


def test_azure_principals_carry_their_type():
    from blueprints.config import ConfigError, load_farm

    config = stack_config("azure-dev")
    config["dragonfarm:breeding_ground"]["admins"] = ["00000000-0000-4000-8000-0000000000a1"]
    with pytest.raises(ConfigError) as info:
        load_farm(config, source="s.yaml")
    assert info.value.lines()[0].startswith("s.yaml: dragonfarm:breeding_ground.admins[0]: got '00000000-0000-4000-8000-0000000000a1'; "
                                            "allowed: an Entra principal as <type>:<object id>, type user, group or servicePrincipal")


def test_urns_do_not_move_when_unrelated_settings_change(tmp_path):
    from tests.conftest import urns_of

    keep = (CLUSTER, AGENT_POOL, "azure-native:storage:StorageAccount", "azure-native:keyvault:Key")
    before = urns_of(planned("azure-prod"), keep)
    config = stack_config("azure-prod")
    config["dragonfarm:ledger"]["monthly_budget"] = 9999
    config["dragonfarm:tags"]["owner"] = "someone-else"
    config["dragonfarm:breeding_ground"]["gpu_pools"]["infer"]["max_nodes"] = 12
    config["dragonfarm:breeding_ground"]["teams"]["newteam"] = {"gpu_quota": 0}
    assert urns_of(plan_config(config, tmp_path, name="azure-prod"), keep) == before
