"""The GCP blueprint: GKE cluster, GPU node pools, compute classes, Kueue, dev box, hard stop and cost.

Expected values come from the GKE and Compute Engine references named at each test, and from catalog
rows quoted in the test (SkyPilot catalog v8 gcp/vms.csv at 006059e0, as compute.csv cites).
"""

from __future__ import annotations

import json

import pytest

from dragonfarm.cost import estimate
from tests.conftest import plan_config, planned, stack_config, urns_of

CLUSTER = "gcp:container/cluster:Cluster"
NODEPOOL = "gcp:container/nodePool:NodePool"
COMPUTE_CLASS = "kubernetes:cloud.google.com/v1:ComputeClass"
FLAVOR = "kubernetes:kueue.x-k8s.io/v1beta1:ResourceFlavor"
INSTANCE = "gcp:compute/instance:Instance"
FUNCTION = "gcp:cloudfunctionsv2/function:Function"


def cluster(stack: str) -> dict:
    (found,) = planned(stack).of_type(CLUSTER)
    return found.inputs


def node_pools(stack: str) -> dict[str, dict]:
    return {r.inputs["name"]: r.inputs for r in planned(stack).of_type(NODEPOOL)}


# ---- cluster ------------------------------------------------------------------------------------

def test_dev_is_zonal_in_the_first_zone_and_prod_is_regional():
    # GKE pricing: the free tier credit covers one zonal (or Autopilot) cluster per billing account.
    assert cluster("gcp-dev")["location"] == "us-central1-a"
    assert cluster("gcp-prod")["location"] == "us-central1"
    assert cluster("gcp-prod")["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]


def test_nodes_are_private_and_the_endpoint_follows_deploy_from():
    # Terraform google_container_cluster, private_cluster_config: enable_private_endpoint true = the private
    # endpoint is the cluster endpoint and the public one is off; master_authorized_networks_config lists the
    # CIDRs that may reach the endpoint; gcp_public_cidrs_access_enabled false keeps Google's ranges out.
    dev, prod = cluster("gcp-dev"), cluster("gcp-prod")
    assert dev["privateClusterConfig"] == {"enablePrivateNodes": True, "enablePrivateEndpoint": False}
    assert [b["cidrBlock"] for b in dev["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == ["203.0.113.0/24"]
    assert prod["privateClusterConfig"] == {"enablePrivateNodes": True, "enablePrivateEndpoint": True}
    assert [b["cidrBlock"] for b in prod["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == ["10.40.0.0/16"]
    # private_endpoint_enforcement_enabled: authorized networks also apply to the private endpoint (off by default).
    assert prod["masterAuthorizedNetworksConfig"]["privateEndpointEnforcementEnabled"] is True
    for inputs in (dev, prod):
        assert inputs["masterAuthorizedNetworksConfig"]["gcpPublicCidrsAccessEnabled"] is False
        # Private Service Connect clusters (GKE 1.29+) take no master_ipv4_cidr_block.
        assert "masterIpv4CidrBlock" not in inputs["privateClusterConfig"]


def test_cluster_security_settings():
    for stack, project in (("gcp-dev", "dfarm-ml-dev"), ("gcp-prod", "dfarm-ml-prod")):
        inputs = cluster(stack)
        assert inputs["workloadIdentityConfig"] == {"workloadPool": f"{project}.svc.id.goog"}
        # Dataplane V2 enforces NetworkPolicy itself ("always on"); the Calico network_policy block is for DPv1.
        assert inputs["datapathProvider"] == "ADVANCED_DATAPATH" and "networkPolicy" not in inputs
        assert inputs["enableShieldedNodes"] is True
        key = f"projects/{project}/locations/us-central1/keyRings/{inputs['name'].removesuffix('-cluster')}-fence-keyring/cryptoKeys/" \
              f"{inputs['name'].removesuffix('-cluster')}-fence-data"
        assert inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": key}
        # Separate node pools: the default pool goes (remove_default_node_pool needs initial_node_count set).
        assert inputs["removeDefaultNodePool"] is True and inputs["initialNodeCount"] == 1
        # The short-lived default pool runs as the farm's node account with the farm key, not the Compute Engine default.
        assert inputs["nodeConfig"]["serviceAccount"].startswith("nodes-") and inputs["nodeConfig"]["bootDiskKmsKey"] == key
        assert inputs["monitoringConfig"]["enableComponents"] == ["SYSTEM_COMPONENTS", "DCGM"]
        assert inputs["monitoringConfig"]["managedPrometheus"] == {"enabled": True}
    assert cluster("gcp-dev")["deletionProtection"] is False and cluster("gcp-prod")["deletionProtection"] is True


def test_minor_version_is_pinned_on_the_channel_until_end_of_support():
    inputs = cluster("gcp-dev")
    assert inputs["releaseChannel"] == {"channel": "REGULAR"} and inputs["minMasterVersion"] == "1.35"
    (exclusion,) = inputs["maintenancePolicy"]["maintenanceExclusions"]
    assert exclusion["exclusionOptions"] == {"scope": "NO_MINOR_UPGRADES", "endTimeBehavior": "UNTIL_END_OF_SUPPORT"}
    # GKE release schedule: 1.35 reached the Regular channel on 2026-02-11.
    assert exclusion["startTime"] == "2026-02-11T00:00:00Z"
    assert inputs["maintenancePolicy"]["recurringWindow"]["recurrence"] == "FREQ=WEEKLY;BYDAY=SA,SU"


def test_service_agents_may_use_the_farm_key():
    members = {r.inputs["member"] for r in planned("gcp-dev").of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")}
    # GKE "Encrypt secrets at the application layer" (Kubernetes Engine service agent) and Compute Engine CMEK
    # (Compute Engine service agent, for node and dev-box boot disks); project number from the mocks.
    assert "serviceAccount:service-424242424242@container-engine-robot.iam.gserviceaccount.com" in members
    assert "serviceAccount:service-424242424242@compute-system.iam.gserviceaccount.com" in members


# ---- node pools ---------------------------------------------------------------------------------

def test_nodes_run_as_a_least_privilege_account_with_default_scopes():
    roles = [r.inputs for r in planned("gcp-dev").of_type("gcp:projects/iAMMember:IAMMember") if r.name.endswith("-nodes-role")]
    assert [r["role"] for r in roles] == ["roles/container.defaultNodeServiceAccount"]
    for name, pool in node_pools("gcp-dev").items():
        config = pool["nodeConfig"]
        assert config["serviceAccount"].startswith("nodes-") and "-compute@" not in config["serviceAccount"], name
        assert "https://www.googleapis.com/auth/cloud-platform" not in config["oauthScopes"], name
        # The GPU driver installer downloads from Cloud Storage: read-only storage scope needed (GKE GPU docs).
        assert "https://www.googleapis.com/auth/devstorage.read_only" in config["oauthScopes"], name
        assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}, name
        assert config["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}, name
        assert config["resourceLabels"]["dragonfarm-farm"] == "dfarm-gcp-dev", name
        assert config["bootDiskKmsKey"].endswith("/cryptoKeys/dfarm-gcp-dev-fence-data"), name


def test_system_pool_is_small_on_demand_and_autoscales():
    system = node_pools("gcp-prod")["system"]
    assert system["nodeConfig"]["machineType"] == "e2-standard-4" and "spot" not in system["nodeConfig"]
    assert system["autoscaling"] == {"totalMinNodeCount": 2, "totalMaxNodeCount": 4, "locationPolicy": "BALANCED"}


def test_dev_l4_pool_is_spot_scales_from_zero_and_uses_zones_selling_l4():
    pool = node_pools("gcp-dev")["l4"]
    config = pool["nodeConfig"]
    # GCP GPU machine types: g2-standard-4 carries one L4 (accelerator nvidia-l4).
    assert config["machineType"] == "g2-standard-4" and config["spot"] is True
    assert config["guestAccelerators"] == [{"type": "nvidia-l4", "count": 1, "gpuDriverInstallationConfig": {"gpuDriverVersion": "DEFAULT"}}]
    # total_*: whole-pool counts (min/max_node_count would be per zone); ANY for spot (GKE cluster autoscaler).
    assert pool["autoscaling"] == {"totalMinNodeCount": 0, "totalMaxNodeCount": 4, "locationPolicy": "ANY"}
    assert pool["initialNodeCount"] == 0
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in config["taints"]
    assert config["labels"] == {"dragonfarm.io/pool": "l4", "dragonfarm.io/capacity": "spot", "nvidia.com/gpu.present": "true"}
    # SkyPilot gcp/vms.csv: g2-standard-4 with its L4 in us-central1-a, -b, -c; the stack uses a and c.
    assert pool["nodeLocations"] == ["us-central1-a", "us-central1-c"]
    assert pool["management"] == {"autoRepair": True, "autoUpgrade": True}


def test_fallback_pool_is_a_spot_and_an_on_demand_node_pool_tied_by_a_compute_class():
    pools = node_pools("gcp-prod")
    spot, on_demand = pools["train-a100-spot"], pools["train-a100-on-demand"]
    for pool, is_spot in ((spot, True), (on_demand, False)):
        config = pool["nodeConfig"]
        assert config["machineType"] == "a2-highgpu-8g" and config["spot"] is is_spot
        assert config["guestAccelerators"][0]["type"] == "nvidia-tesla-a100" and config["guestAccelerators"][0]["count"] == 8
        # A node pool made by hand joins a compute class by its label and taint (GKE compute class docs).
        assert config["labels"]["cloud.google.com/compute-class"] == "train-a100"
        assert {"key": "cloud.google.com/compute-class", "value": "train-a100", "effect": "NO_SCHEDULE"} in config["taints"]
        assert pool["autoscaling"]["totalMaxNodeCount"] == 4 and pool["autoscaling"]["totalMinNodeCount"] == 0
        # SkyPilot: a2-highgpu-8g in us-central1-a, -b, -c, -f; the stack's zones are a, b, c.
        assert pool["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]
        assert config["diskSizeGb"] == 1000
    assert spot["autoscaling"]["locationPolicy"] == "ANY" and on_demand["autoscaling"]["locationPolicy"] == "BALANCED"
    (compute_class,) = planned("gcp-prod").of_type(COMPUTE_CLASS)
    assert compute_class.inputs["metadata"]["name"] == "train-a100"
    assert compute_class.inputs["spec"] == {
        "priorities": [{"nodepools": ["train-a100-spot"]}, {"nodepools": ["train-a100-on-demand"]}],
        "nodePoolAutoCreation": {"enabled": False}, "whenUnsatisfiable": "DoNotScaleUp",
        "activeMigration": {"optimizeRulePriority": False}}


def test_warm_inference_node_is_honoured():
    infer = node_pools("gcp-prod")["infer"]
    assert infer["nodeConfig"]["spot"] is False
    assert infer["autoscaling"] == {"totalMinNodeCount": 1, "totalMaxNodeCount": 8, "locationPolicy": "BALANCED"}
    assert infer["initialNodeCount"] == 1  # per zone; the autoscaler then holds the pool at its minimum


def test_kueue_flavors_select_the_farm_pool_label_and_the_compute_class():
    flavors = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in planned("gcp-prod").of_type(FLAVOR)}
    assert flavors["infer"]["nodeLabels"] == {"dragonfarm.io/pool": "infer"}
    # Kueue injects a flavor's nodeLabels into admitted pods: a job on the fallback pool selects its compute class.
    assert flavors["train-a100"]["nodeLabels"] == {"dragonfarm.io/pool": "train-a100", "cloud.google.com/compute-class": "train-a100"}
    assert {"key": "cloud.google.com/compute-class", "operator": "Equal", "value": "train-a100", "effect": "NoSchedule"} \
        in flavors["train-a100"]["tolerations"]


def test_gke_runs_the_device_plugin_and_dcgm_so_the_farm_installs_neither():
    releases = {r.inputs["name"] for r in planned("gcp-prod").of_type("kubernetes:helm.sh/v3:Release")}
    assert releases == {"kueue"}


# ---- people and workloads -----------------------------------------------------------------------

def test_admins_and_members_get_cluster_access():
    plan = planned("gcp-prod")
    grants = {(r.inputs["role"], r.inputs["member"]) for r in plan.of_type("gcp:projects/iAMMember:IAMMember")}
    assert ("roles/container.admin", "group:ml-platform-admins@example.com") in grants
    assert ("roles/container.clusterViewer", "user:researcher@example.com") in grants
    bindings = {r.inputs["metadata"]["namespace"]: r.inputs for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")}
    assert bindings["research"]["roleRef"]["name"] == "edit"
    assert bindings["research"]["subjects"] == [{"kind": "User", "name": "researcher@example.com", "apiGroup": "rbac.authorization.k8s.io"}]


def test_team_workloads_get_their_own_service_account_on_their_troughs_only():
    plan = planned("gcp-prod")
    accounts = {r.name: r for r in plan.of_type("gcp:serviceaccount/account:Account")}
    serving = accounts["dfarm-gcp-prod-cluster-team-serving"]
    binding = next(r for r in plan.of_type("gcp:serviceaccount/iAMMember:IAMMember") if r.name.endswith("team-serving-workload-identity"))
    assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert binding.inputs["member"] == "serviceAccount:dfarm-ml-prod.svc.id.goog[serving/workload]"
    grants = {r.name.rsplit("-trough-", 1)[1]: r.inputs["role"] for r in plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
              if "-team-serving-" in r.name}
    # The stack: serving gets models read, logs read-write; nothing else.
    assert grants == {"models": "roles/storage.objectViewer", "logs": "roles/storage.objectUser"}
    sa = next(r for r in plan.of_type("kubernetes:core/v1:ServiceAccount") if r.inputs["metadata"]["namespace"] == "serving")
    assert sa.inputs["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": f"{serving.inputs['accountId']}@dfarm-ml-prod.iam.gserviceaccount.com"}


# ---- dev box ------------------------------------------------------------------------------------

def test_dev_box_is_private_shielded_encrypted_and_stops_when_idle():
    (box,) = planned("gcp-dev").of_type(INSTANCE)
    inputs = box.inputs
    assert inputs["machineType"] == "n1-standard-4" and inputs["guestAccelerators"] == [{"type": "nvidia-tesla-t4", "count": 1}]
    assert all("accessConfigs" not in nic for nic in inputs["networkInterfaces"])  # no external IP
    # Compute Engine GPU VMs cannot live-migrate: onHostMaintenance TERMINATE.
    assert inputs["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert inputs["shieldedInstanceConfig"]["enableVtpm"] is True and inputs["shieldedInstanceConfig"]["enableIntegrityMonitoring"] is True
    assert inputs["bootDisk"]["kmsKeySelfLink"].endswith("/cryptoKeys/dfarm-gcp-dev-fence-data")
    assert inputs["bootDisk"]["initializeParams"]["size"] == 200
    assert inputs["metadata"]["enable-oslogin"] == "TRUE"
    script = inputs["metadata"]["startup-script"]
    assert "Environment=IDLE_MINUTES=60" in script and 'STOP_COMMAND=systemctl poweroff' in script and "nvidia-smi" in script
    (schedule,) = planned("gcp-dev").of_type("gcp:compute/resourcePolicy:ResourcePolicy")
    # regions.csv: us-central1 is in America/Chicago; the default nightly stop is 21:00.
    assert schedule.inputs["instanceSchedulePolicy"] == {"vmStopSchedule": {"schedule": "0 21 * * *"}, "timeZone": "America/Chicago"}
    assert inputs["bootDisk"]["initializeParams"]["labels"]["dragonfarm-farm"] == "dfarm-gcp-dev"  # default labels skip disks
    # Compute Engine refuses a schedule on a VM whose service agent cannot stop it (412): the grant comes first.
    (grant,) = [r for r in planned("gcp-dev").of_type("gcp:projects/iAMMember:IAMMember") if r.name.endswith("-vm-schedules")]
    assert grant.inputs["member"] == "serviceAccount:service-424242424242@compute-system.iam.gserviceaccount.com"
    assert grant.urn in box.dependsOn
    (firewall,) = planned("gcp-dev").of_type("gcp:compute/firewall:Firewall")
    # IAP TCP forwarding connects from 35.235.240.0/20 only.
    assert firewall.inputs["sourceRanges"] == ["35.235.240.0/20"] and firewall.inputs["allows"] == [{"protocol": "tcp", "ports": ["22"]}]


def test_spot_dev_box_stops_on_preemption(tmp_path):
    config = stack_config("gcp-dev")
    config["dragonfarm:barns"]["devbox"]["spot"] = True
    (box,) = plan_config(config, tmp_path).of_type(INSTANCE)
    # Terraform google_compute_instance: SPOT needs preemptible true and automatic_restart false.
    assert box.inputs["scheduling"] == {"onHostMaintenance": "TERMINATE", "automaticRestart": False, "provisioningModel": "SPOT",
                                        "preemptible": True, "instanceTerminationAction": "STOP"}


# ---- ledger -------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_hard_stop_is_off_unless_asked(stack):
    assert planned(stack).of_type(FUNCTION) == []


def test_hard_stop_function_listens_to_the_budget_topic_and_stops_pools_and_boxes(tmp_path):
    config = stack_config("gcp-dev")
    config["dragonfarm:ledger"]["hard_stop"] = True
    plan = plan_config(config, tmp_path)
    (function,) = plan.of_type(FUNCTION)
    (topic,) = plan.of_type("gcp:pubsub/topic:Topic")
    trigger = function.inputs["eventTrigger"]
    assert trigger["eventType"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["pubsubTopic"] == f"projects/dfarm-ml-dev/topics/{topic.inputs['name']}"
    env = function.inputs["serviceConfig"]["environmentVariables"]
    assert json.loads(env["NODE_POOLS"]) == ["projects/dfarm-ml-dev/locations/us-central1-a/clusters/dfarm-gcp-dev-cluster/nodePools/l4"]
    assert json.loads(env["INSTANCES"]) == ["projects/dfarm-ml-dev/zones/us-central1-a/instances/dfarm-gcp-dev-devbox"]
    grants = {r.inputs["role"]: r.inputs for r in plan.of_type("gcp:projects/iAMMember:IAMMember") if "hard-stop" in r.name}
    assert set(grants) == {"roles/container.clusterAdmin", "roles/cloudbuild.builds.builder", "roles/compute.instanceAdmin.v1"}
    # The dev box grant holds for that box only (an IAM condition on resource.name).
    assert grants["roles/compute.instanceAdmin.v1"]["condition"]["expression"] == \
        'resource.name == "projects/dfarm-ml-dev/zones/us-central1-a/instances/dfarm-gcp-dev-devbox"'
    # Pub/Sub's service agent mints the push token as the runner (Eventarc docs: needed on projects from before 2021-04-08).
    (token,) = [r for r in plan.of_type("gcp:serviceaccount/iAMMember:IAMMember") if r.name.endswith("-pubsub-token")]
    assert token.inputs["role"] == "roles/iam.serviceAccountTokenCreator"
    assert token.inputs["member"] == "serviceAccount:service-424242424242@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert "roles/resourcemanager.projectBillingManager" not in grants and "roles/billing.admin" not in grants


def test_hard_stop_function_acts_only_at_or_over_budget():
    from components.ledger.hard_stop_gcp.budget import over_budget

    # Budget notification format (Cloud Billing, programmatic notifications): costAmount, budgetAmount.
    assert over_budget({"costAmount": 2000.0, "budgetAmount": 2000.0})
    assert not over_budget({"costAmount": 1999.99, "budgetAmount": 2000.0})
    assert not over_budget({"costAmount": 10.0})


# ---- cost ---------------------------------------------------------------------------------------

def test_cost_prices_every_gcp_pool_from_catalog_rows():
    lines = {line.name: line for line in estimate(planned("gcp-prod")).lines}
    # compute.csv us-central1 (SkyPilot v8 gcp, VM + 8 x A100 rows): a2-highgpu-8g 29.3871 on demand, 14.4308 spot;
    # fees.csv pd-balanced 0.10 per GB-month; 1000 GB disks; 1400 node-h at spot_share 0.8.
    disk_hour = 1000 * 0.10 / 730
    assert lines["dfarm-gcp-prod-cluster-train-a100-spot"].monthly == pytest.approx(1120 * (14.4308 + disk_hour), rel=1e-4)
    assert lines["dfarm-gcp-prod-cluster-train-a100-on-demand"].monthly == pytest.approx(280 * (29.3871 + disk_hour), rel=1e-4)
    # g2-standard-4 on demand 0.70683; 200 GB disks; 4000 node-h.
    assert lines["dfarm-gcp-prod-cluster-infer"].monthly == pytest.approx(4000 * (0.70683 + 200 * 0.10 / 730), rel=1e-4)
    # GKE pricing: 0.10 per cluster-hour; a regional cluster gets no free tier credit.
    assert lines["dfarm-gcp-prod-cluster"].monthly == pytest.approx(73.0)
    dev = {line.name: line for line in estimate(planned("gcp-dev")).lines}
    assert dev["dfarm-gcp-dev-cluster"].monthly == pytest.approx(0.0)  # zonal: 73.00 fee, 74.40 credit
    # n1-standard-4 + 1 T4 0.54 on demand (SkyPilot rows 0.189999 + 0.35); 120 h; 200 GB disk a month.
    assert dev["dfarm-gcp-dev-devbox"].monthly == pytest.approx(120 * 0.54 + 200 * 0.10, rel=1e-3)
    assert all(line.status != "unclassified" for line in estimate(planned("gcp-prod")).lines)


# ---- stability ----------------------------------------------------------------------------------

def test_urns_do_not_move_when_unrelated_settings_change(tmp_path):
    keep = (CLUSTER, NODEPOOL, "gcp:storage/bucket:Bucket", "gcp:kms/cryptoKey:CryptoKey", INSTANCE, COMPUTE_CLASS)
    before = urns_of(planned("gcp-prod"), keep)
    config = stack_config("gcp-prod")
    config["dragonfarm:ledger"]["monthly_budget"] = 9999
    config["dragonfarm:tags"]["owner"] = "someone-else"
    config["dragonfarm:breeding_ground"]["gpu_pools"]["infer"]["max_nodes"] = 12
    config["dragonfarm:breeding_ground"]["teams"]["newteam"] = {"gpu_quota": 2}
    assert urns_of(plan_config(config, tmp_path, name="gcp-prod"), keep) == before


def test_the_identity_running_pulumi_up_must_be_an_admin():
    import pulumi

    from blueprints import build
    from blueprints.config import load_farm
    from dragonfarm.plan import record

    # The Kubernetes provider waits for the admins' IAM grants (and for the deployer check).
    plan = planned("gcp-dev")
    (provider,) = plan.of_type("pulumi:providers:kubernetes")
    admin = next(r for r in plan.of_type("gcp:projects/iAMMember:IAMMember") if r.inputs["role"] == "roles/container.admin")
    assert admin.urn in provider.dependsOn
    farm = load_farm(stack_config("gcp-dev"), source="gcp-dev")
    with pytest.raises(pulumi.RunError) as info:
        record(lambda: build(farm), cloud="gcp", region="us-central1", project="dfarm-ml-dev", stack="gcp-dev",
               caller="someone-else@example.com")
    assert str(info.value) == (
        "dragonfarm:breeding_ground.admins: got user:ml-platform-admin@example.com; allowed: a list including the identity running "
        "pulumi up (someone-else@example.com): the cluster admits only listed admins, and the program installs the in-cluster stack "
        "as that identity")
    # An admin group may hold the deployer (IAM decides): not refused.
    from components.breeding_ground.gcp import checked_deployer
    assert checked_deployer("ci@p.iam.gserviceaccount.com", ["group:admins@example.com"]) == "ci@p.iam.gserviceaccount.com"


def test_gcp_logs_are_priced_from_the_usage_profile():
    # Cloud Logging pricing: 0.50 per GiB ingested after 50 GiB free per project a month; 0.01 per GiB-month kept beyond
    # 30 days. gcp-prod: 200 GB flow logs + 60 GB GKE logs a month, kept 365 days (steady state: 260 / 30.42 x 335 GB).
    lines = {line.name: line for line in estimate(planned("gcp-prod")).lines}
    days_per_month = 730 / 24  # the 730-hour month
    expected = (260 - 50) * 0.50 + 260 / days_per_month * (365 - 30) * 0.01
    assert lines["dfarm-gcp-prod-fence-log-retention"].monthly == pytest.approx(expected, abs=0.01)
