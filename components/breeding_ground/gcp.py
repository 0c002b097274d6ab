"""GcpBreedingGround: GKE Standard with GPU node pools, spot first, scaling to zero, usable on day one.

- GKE Standard, VPC-native on the fence's subnet (its `pods` and `services` secondary ranges), default
  node pool removed. dev: a zonal cluster (GKE's free tier credit covers one zonal cluster per billing
  account); prod: regional.
- Private nodes (no external IPs; out through the fence's Cloud NAT). The API endpoint follows
  `deploy_from`: `internet` keeps a public endpoint open only to `public_endpoint_cidrs` (master
  authorized networks), `inside-network` makes it private and open to `runner_cidrs`.
- Workload Identity, Dataplane V2 (Kubernetes NetworkPolicy enforced), shielded nodes, secrets
  encrypted with the fence's KMS key, cost allocation on, managed DCGM metrics, a release channel with
  the pinned minor held by a no-minor-upgrades exclusion until the version's end of support, a weekend
  maintenance window, deletion protection in prod.
- Nodes run as a farm service account holding only GKE's default node role, with the default node
  scopes (no `cloud-platform`), Workload Identity metadata, shielded VM, boot disks encrypted with the
  farm key, and the farm's cost labels as GCE resource labels (what billing sees).
- System pool: small on-demand CPU pool, autoscaling min..max nodes.
- GPU pools: one node pool per capacity type of each farm pool (a `spot-with-fallback` pool is a spot
  node pool and an on-demand one, tied by a custom ComputeClass that tries spot first). Autoscaling
  counts nodes in the whole pool (`total_*_node_count`), from `min_nodes`; only zones that sell the GPU;
  GKE installs the NVIDIA driver (pinned branch choice) and runs the device plugin.
- People: admins get `roles/container.admin` on the project (Kubernetes admin through IAM), team members
  get `roles/container.clusterViewer` (to fetch credentials) and the `edit` ClusterRole in their teams'
  namespaces only. The identity running `pulumi up` must be an admin (checked before anything is built).
- Per team: a Google service account bound to the team's `workload` ServiceAccount (Workload Identity)
  with bucket-level roles on its troughs only.
- The cloud-neutral GpuStack on top (no device plugin, no DCGM exporter: GKE runs both).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
from pulumi_gcp import container, organizations, projects, serviceaccount, storage
from pulumi_kubernetes import Provider as KubernetesProvider
from pulumi_kubernetes.apiextensions import CustomResource

from components.base import FarmComponent, token
from components.breeding_ground import catalog, versions
from components.breeding_ground.access import exec_kubeconfig, principal_slug, refuse_deployer
from components.breeding_ground.gpu_stack import TEAM_SERVICE_ACCOUNT, GpuStack
from components.breeding_ground.spec import SYSTEM_GROUP, BreedingGroundSpec, Capacity, GpuPoolSpec, node_group_names, pool_labels

# GKE node taint effects are enums (GKE API NodeTaint.effect).
TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
# Custom compute classes (GKE "About custom compute classes"): pods select one with this node selector;
# node pools created by hand join one with this label and taint (pods selecting the class tolerate it).
COMPUTE_CLASS_LABEL = "cloud.google.com/compute-class"
COMPUTE_CLASS_API = "cloud.google.com/v1"
# GKE's predefined role for node service accounts (GKE "Harden your cluster's security": use a least
# privilege service account; roles/container.defaultNodeServiceAccount holds logging, monitoring and
# image-pull permissions).
NODE_ROLE = "roles/container.defaultNodeServiceAccount"
# GKE's default node scopes (gcloud container node-pools create --scopes default): image pulls from
# Cloud Storage (also what the GPU driver installer downloads with), logging, monitoring, service control.
NODE_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_only", "https://www.googleapis.com/auth/logging.write",
               "https://www.googleapis.com/auth/monitoring", "https://www.googleapis.com/auth/servicecontrol",
               "https://www.googleapis.com/auth/service.management.readonly", "https://www.googleapis.com/auth/trace.append"]
# GPU driver GKE installs (GKE "Run GPUs in Standard node pools", gpu-driver-version): DEFAULT is the
# branch GKE tested with the node version; LATEST the newest one. Pinned: a driver change is a reviewed change.
GPU_DRIVER = "DEFAULT"
SYSTEM_DISK_GB = 50
SYSTEM_POOL = SYSTEM_GROUP
# Bucket roles a team's or dev box's service account gets per access level (Cloud Storage IAM roles:
# objectViewer reads and lists objects; objectUser also creates, overwrites and deletes them, no IAM).
BUCKET_ROLES = {"read": "roles/storage.objectViewer", "read-write": "roles/storage.objectUser"}
# Weekend maintenance window: 6 h on Saturday and Sunday nights (GKE needs 48 h of availability in 32 days).
MAINTENANCE: container.ClusterMaintenancePolicyRecurringWindowArgsDict = {"start_time": "2026-01-03T02:00:00Z", "end_time": "2026-01-03T08:00:00Z", "recurrence": "FREQ=WEEKLY;BYDAY=SA,SU"}


def service_account_id(*parts: str) -> str:
    """A service account id (6-30 lowercase letters, digits, hyphens, starting with a letter) unique per
    farm and part: readable start, digest of the whole for uniqueness."""
    readable = "-".join(parts[1:]).strip("-")[:21].rstrip("-") or "df"
    return f"{readable}-{hashlib.sha256('/'.join(parts).encode()).hexdigest()[:8]}"


def node_basics(service_account: pulumi.Input[str], key_id: pulumi.Input[str], labels: dict[str, str]) -> container.NodePoolNodeConfigArgsDict:
    """What every node of the farm has, whatever its pool: the farm's node account with GKE's default scopes,
    Workload Identity metadata (pods never see the node's credentials), shielded VM with secure boot, a
    pd-balanced boot disk encrypted with the farm key, the farm's cost labels as GCE resource labels (what
    billing sees: provider default labels do not reach nodes), COS with containerd."""
    return {"service_account": service_account, "oauth_scopes": NODE_SCOPES, "image_type": "COS_CONTAINERD",
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
            "boot_disk_kms_key": key_id, "disk_type": "pd-balanced", "resource_labels": dict(labels),
            "metadata": {"disable-legacy-endpoints": "true"}}


def launched(pool: GpuPoolSpec, region: str) -> catalog.GpuInstance:
    """The machine type a GKE node pool of this pool runs: the smallest catalog type with its GPUs sold in
    the region (a GKE node pool has one machine type)."""
    found = catalog.instance("gcp", pool.instance_types("gcp", region)[0])
    assert found is not None  # checked at load
    return found


def pool_zones(pool: GpuPoolSpec, region: str, zones: list[str]) -> list[str]:
    """Those of `zones` (the stack's, or every zone of the region) that sell the pool's machine type with its
    GPUs (offered_zones.csv; all of them where the data knows nothing)."""
    offering = catalog.zones_offering("gcp", launched(pool, region).instance_type, pool.gpus_per_node, region)
    return [z for z in zones if offering is None or z in offering]


def gpu_node_pool_args(key: str, pool: GpuPoolSpec, capacity: str, *, region: str, zones: list[str],
                       service_account: pulumi.Input[str], key_id: pulumi.Input[str], labels: dict[str, str]) -> dict[str, Any]:
    """The NodePool arguments of one capacity type of a GPU pool (pure apart from its inputs: tests read it)."""
    instance = launched(pool, region)
    spot = capacity == "spot"
    node_labels = pool_labels(key, pool, capacity)
    taints = [{"key": t.key, "value": t.value, "effect": TAINT_EFFECT[t.effect]} for t in pool.taints]
    if pool.capacity is Capacity.spot_with_fallback:
        node_labels[COMPUTE_CLASS_LABEL] = key
        taints.append({"key": COMPUTE_CLASS_LABEL, "value": key, "effect": "NO_SCHEDULE"})
    config: dict[str, Any] = {
        **node_basics(service_account, key_id, labels),
        "machine_type": instance.instance_type, "spot": spot,
        "guest_accelerators": [{"type": instance.accelerator, "count": instance.gpus,
                                "gpu_driver_installation_config": {"gpu_driver_version": GPU_DRIVER}}],
        "disk_size_gb": pool.disk_gb, "labels": node_labels, "taints": taints,
    }
    if pool.capacity_reservation_id:
        config["reservation_affinity"] = {"consume_reservation_type": "SPECIFIC_RESERVATION",
                                          "key": "compute.googleapis.com/reservation-name", "values": [pool.capacity_reservation_id]}
    located = pool_zones(pool, region, zones)
    # Warm nodes (min_nodes) stay on the pool's first capacity type: the spot node pool of a fallback pool
    # holds none, so the floor does not vanish with spot capacity... unless the whole pool is spot.
    warm = pool.min_nodes if (capacity == "on-demand" or pool.capacity is Capacity.spot) else 0
    return {
        "name": node_group_names("gcp", key, pool)[capacity], "node_locations": located,
        # Whole-pool counts, not per zone: max_nodes means nodes in the pool (GKE NodePoolAutoscaling,
        # total_min_node_count / total_max_node_count). ANY puts spot nodes where capacity is.
        "autoscaling": {"total_min_node_count": warm, "total_max_node_count": pool.max_nodes,
                        "location_policy": "ANY" if spot else "BALANCED"},
        # Per zone; the autoscaler owns the size afterwards.
        "initial_node_count": -(-warm // max(1, len(located))) if warm else 0,
        "management": {"auto_repair": True, "auto_upgrade": True},
        # One node at a time, no surge node: a surge would need a GPU the quota may not have.
        "upgrade_settings": {"strategy": "SURGE", "max_surge": 0, "max_unavailable": 1},
        "node_config": config,
    }


def compute_class_spec(key: str, pool: GpuPoolSpec) -> dict[str, Any]:
    """The ComputeClass of a spot-with-fallback pool: its spot node pool first, its on-demand node pool
    when spot cannot scale up; no auto-created pools; nothing else when both are exhausted; no active
    migration back to spot (it would evict running training jobs)."""
    names = node_group_names("gcp", key, pool)
    return {
        "priorities": [{"nodepools": [names["spot"]]}, {"nodepools": [names["on-demand"]]}],
        "nodePoolAutoCreation": {"enabled": False},
        "whenUnsatisfiable": "DoNotScaleUp",
        "activeMigration": {"optimizeRulePriority": False},
    }


def member_email(principal: str) -> str:
    return principal.split(":", 1)[1]


def checked_deployer(caller_email: str, admins: list[str]) -> str:
    """`caller_email` if it is one of `admins` (as user: or serviceAccount:), or if an admin is a group (its
    members cannot be listed here: IAM decides). The program installs the in-cluster stack as whoever runs
    `pulumi up`; anyone else would be refused by the cluster after it is built: refused in preview."""
    if caller_email not in [member_email(a) for a in admins if not a.startswith("group:")] and not any(a.startswith("group:") for a in admins):
        refuse_deployer(caller_email, admins)
    return caller_email


def exclusion_start(version: str) -> str:
    """The no-minor-upgrades exclusion starts when the pinned version was released on GKE (a fixed date:
    a moving start would show a change on every run)."""
    row = next(v for v in versions.all_versions() if v.cloud == "gcp" and v.version == version)
    return f"{row.released.isoformat()}T00:00:00Z"


class GcpBreedingGround(FarmComponent):
    TOKEN = token("GcpBreedingGround")

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    location: str
    kubeconfig: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    """projects/P/locations/L/clusters/C."""
    gpu_node_pools: list[str]
    """Names of every GPU node pool: what the hard stop scales to zero."""

    def __init__(self, name: str, spec: BreedingGroundSpec, *, project: str, region: str, zones: list[str], zonal: bool,
                 network_id: pulumi.Input[str], subnet_id: pulumi.Input[str], pods_range: str, services_range: str,
                 key_id: pulumi.Input[str], labels: dict[str, str], protect: bool,
                 team_troughs: dict[str, dict[str, tuple[pulumi.Input[str], str]]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        self.location = zones[0] if zonal else region
        nodes_sa = serviceaccount.Account(f"{name}-nodes", account_id=service_account_id(name, "nodes"), project=project,
                                          display_name=f"{name} GKE nodes", opts=self.child())
        role = projects.IAMMember(f"{name}-nodes-role", project=project, role=NODE_ROLE, member=nodes_sa.member, opts=self.child())
        cluster = self._cluster(name, spec, project, network_id, subnet_id, pods_range, services_range, key_id, protect,
                                zones if not zonal else [], nodes_sa.email, [role])
        self.cluster_name, self.endpoint, self.cluster_id = cluster.name, cluster.endpoint, cluster.id
        system = self._system_pool(name, spec, project, cluster, nodes_sa.email, key_id, labels, zones if not zonal else [], [role])
        self.gpu_node_pools = []
        for key, pool in spec.gpu_pools.items():
            for capacity in pool.capacity.capacity_types:
                args = gpu_node_pool_args(key, pool, capacity, region=region, zones=zones, service_account=nodes_sa.email,
                                          key_id=key_id, labels=labels)
                container.NodePool(f"{name}-{args['name']}", cluster=cluster.id, location=self.location, project=project,
                                               **args, opts=self.child(depends_on=[role], ignore_changes=["initialNodeCount"]))
                self.gpu_node_pools.append(args["name"])
        admin_access = self._people(name, spec, project)
        ca = cluster.master_auth.cluster_ca_certificate.apply(lambda c: c or "")
        # Tokens from gcloud's GKE auth plugin.
        self.kubeconfig = pulumi.Output.secret(exec_kubeconfig(cluster.name, pulumi.Output.concat("https://", cluster.endpoint), ca,
                                                               "gke-gcloud-auth-plugin", provide_cluster_info=True))
        provider = KubernetesProvider(f"{name}-k8s", kubeconfig=pulumi.Output.all(self.kubeconfig, self.deployer).apply(lambda a: a[0]),
                                      enable_server_side_apply=True, opts=self.child(depends_on=admin_access))
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[system])
        for key, pool in spec.gpu_pools.items():
            if pool.capacity is Capacity.spot_with_fallback:
                CustomResource(f"{name}-compute-class-{key}", api_version=COMPUTE_CLASS_API, kind="ComputeClass",
                               metadata={"name": key}, spec=compute_class_spec(key, pool), opts=in_cluster)
        annotations = self._team_identities(name, spec, project, cluster, team_troughs or {})
        # Kueue flavors of a fallback pool also select (and so inject into admitted pods) the pool's compute
        # class, and tolerate its taint: a job admitted there is placed by the class, spot first.
        fallback = [k for k, p in spec.gpu_pools.items() if p.capacity is Capacity.spot_with_fallback]
        GpuStack(f"{name}-gpu", spec, cloud="gcp", device_plugin=False, dcgm_exporter=False,
                 flavor_labels={k: {COMPUTE_CLASS_LABEL: k} for k in fallback},
                 flavor_tolerations={k: [{"key": COMPUTE_CLASS_LABEL, "operator": "Equal", "value": k, "effect": "NoSchedule"}]
                                     for k in fallback},
                 service_account_annotations=annotations, after=[system],
                 namespace_editors={team: [{"kind": "User", "name": member_email(m), "api_group": "rbac.authorization.k8s.io"}
                                           for m in t.members] for team, t in spec.teams.items() if t.members},
                 opts=pulumi.ResourceOptions(parent=self, providers=[provider]))
        self.finish({"cluster_name": self.cluster_name, "endpoint": self.endpoint})

    def _cluster(self, name: str, spec: BreedingGroundSpec, project: str, network_id: pulumi.Input[str],
                 subnet_id: pulumi.Input[str], pods_range: str, services_range: str, key_id: pulumi.Input[str], protect: bool,
                 node_zones: list[str], service_account: pulumi.Input[str], after: list[pulumi.Resource]) -> container.Cluster:
        # The fence hands out key_id once GKE's and Compute Engine's service agents may use the key (secrets,
        # boot disks).
        public = spec.deploy_from == "internet"
        cidrs = spec.public_endpoint_cidrs if public else spec.runner_cidrs
        version = spec.version("gcp")
        # The minor version stays pinned (the channel would otherwise move it): a no-minor-upgrades exclusion
        # until the version's end of support; patches and node images still arrive.
        maintenance: container.ClusterMaintenancePolicyArgsDict = {
            "recurring_window": MAINTENANCE,
            "maintenance_exclusions": [{"exclusion_name": f"pin-{version}", "start_time": exclusion_start(version),
                                        "exclusion_options": {"scope": "NO_MINOR_UPGRADES", "end_time_behavior": "UNTIL_END_OF_SUPPORT"}}]}
        node_defaults: Any = {k: v for k, v in node_basics(service_account, key_id, {}).items() if k != "resource_labels"}
        return container.Cluster(
            name, name=name, project=project, location=self.location, node_locations=node_zones or None,
            network=network_id, subnetwork=subnet_id, networking_mode="VPC_NATIVE",
            ip_allocation_policy={"cluster_secondary_range_name": pods_range, "services_secondary_range_name": services_range},
            remove_default_node_pool=True, initial_node_count=1,
            private_cluster_config={"enable_private_nodes": True, "enable_private_endpoint": not public},
            # With a private endpoint the authorized networks are enforced on it too (off by default: anything
            # routed into the VPC, peered or over VPN, would otherwise reach the API).
            master_authorized_networks_config={
                "cidr_blocks": [{"cidr_block": str(c), "display_name": f"{'deployers' if public else 'runners'} {c}"} for c in cidrs],
                "gcp_public_cidrs_access_enabled": False, "private_endpoint_enforcement_enabled": not public},
            # The default pool GKE creates (and the farm removes) runs as the farm's node account with the farm key:
            # the Compute Engine default account may be disabled, and an org policy may demand CMEK disks.
            node_config=node_defaults,
            workload_identity_config={"workload_pool": f"{project}.svc.id.goog"},
            datapath_provider="ADVANCED_DATAPATH",
            enable_shielded_nodes=True,
            database_encryption={"state": "ENCRYPTED", "key_name": key_id},
            release_channel={"channel": "REGULAR"}, min_master_version=version,
            maintenance_policy=maintenance,
            monitoring_config={"enable_components": ["SYSTEM_COMPONENTS", "DCGM"], "managed_prometheus": {"enabled": True}},
            logging_config={"enable_components": ["SYSTEM_COMPONENTS", "APISERVER", "WORKLOADS"]},
            cost_management_config={"enabled": True},
            deletion_protection=protect,
            # node_config only shapes the default pool, removed right after creation: a change must not replace the cluster.
            opts=self.child(depends_on=after, ignore_changes=["nodeConfig"]))

    def _system_pool(self, name: str, spec: BreedingGroundSpec, project: str, cluster: container.Cluster,
                     service_account: pulumi.Input[str], key_id: pulumi.Input[str], labels: dict[str, str], zones: list[str],
                     after: list[pulumi.Resource]) -> container.NodePool:
        pool = spec.system_pool
        system_config: container.NodePoolNodeConfigArgsDict = {
            **node_basics(service_account, key_id, labels), "machine_type": pool.instance("gcp").instance_type,
            "disk_size_gb": SYSTEM_DISK_GB, "labels": {"dragonfarm.io/pool": SYSTEM_POOL}}
        return container.NodePool(
            f"{name}-{SYSTEM_POOL}", name=SYSTEM_POOL, cluster=cluster.id, location=self.location, project=project,
            node_locations=zones or None,
            autoscaling={"total_min_node_count": pool.min_nodes, "total_max_node_count": pool.max_nodes, "location_policy": "BALANCED"},
            initial_node_count=1, management={"auto_repair": True, "auto_upgrade": True},
            node_config=system_config,
            opts=self.child(depends_on=after, ignore_changes=["initialNodeCount"]))

    def _people(self, name: str, spec: BreedingGroundSpec, project: str) -> list[pulumi.Resource]:
        """Admins: Kubernetes admin through IAM (roles/container.admin); members: credentials only
        (clusterViewer), their namespaces through RBAC. Returns what the in-cluster stack waits for."""
        caller = organizations.get_client_open_id_user_info_output(opts=self.invoke()).email
        self.deployer = caller.apply(lambda email: checked_deployer(email, spec.admins))
        grants: list[pulumi.Resource] = []
        for admin in spec.admins:
            grants.append(projects.IAMMember(f"{name}-admin-{principal_slug(admin)}", project=project, role="roles/container.admin",
                                             member=admin, opts=self.child()))
        members = dict.fromkeys(m for team in spec.teams.values() for m in team.members if m not in spec.admins)
        for member in members:
            projects.IAMMember(f"{name}-member-{principal_slug(member)}", project=project, role="roles/container.clusterViewer",
                               member=member, opts=self.child())
        return grants

    def _team_identities(self, name: str, spec: BreedingGroundSpec, project: str, cluster: container.Cluster,
                         team_troughs: dict[str, dict[str, tuple[pulumi.Input[str], str]]]) -> dict[str, dict[str, pulumi.Input[str]]]:
        """Each team's `workload` ServiceAccount acts as its own Google service account (Workload Identity),
        which holds bucket-level roles on the team's troughs only. Returns the ServiceAccount annotations."""
        annotations: dict[str, dict[str, pulumi.Input[str]]] = {}
        for team in spec.teams:
            grants = team_troughs.get(team, {})
            if not grants:
                continue
            account = serviceaccount.Account(f"{name}-team-{team}", account_id=service_account_id(name, "team", team), project=project,
                                             display_name=f"{name} team {team} workloads", opts=self.child())
            # The workload pool exists once the cluster does.
            serviceaccount.IAMMember(f"{name}-team-{team}-workload-identity", service_account_id=account.name,
                                     role="roles/iam.workloadIdentityUser",
                                     member=f"serviceAccount:{project}.svc.id.goog[{team}/{TEAM_SERVICE_ACCOUNT}]",
                                     opts=self.child(depends_on=[cluster]))
            bucket_grants(self, f"{name}-team-{team}", account.member, grants)
            annotations[team] = {"iam.gke.io/gcp-service-account": account.email}
        return annotations


def bucket_grants(owner: FarmComponent, name: str, member: pulumi.Input[str], grants: dict[str, tuple[pulumi.Input[str], str]]) -> None:
    """Bucket-level roles for one principal on the troughs it may use (never project-wide storage roles),
    named by trough so adding or removing one leaves the others alone."""
    for key, (bucket, access) in grants.items():
        storage.BucketIAMMember(f"{name}-trough-{key}", bucket=bucket, role=BUCKET_ROLES[access], member=member, opts=owner.child())
