"""GcpFence: custom-mode VPC, private subnet with pod/service ranges, Cloud Router + NAT, Private Google Access, CMEK key.

Cloud NAT is a regional, managed service: `single` and `per-zone` both give one NAT (GCP spreads it
across zones itself). The Cloud Storage service agent is granted the key so buckets can use CMEK.
"""

from __future__ import annotations

import pulumi
from pulumi_gcp import compute, kms, logging, organizations, projects, storage

from components.base import FarmComponent, token
from components.fence.spec import FenceSpec, NatMode, subnet_plan

KEY_ROTATION = "7776000s"  # 90 days
# Errors of a KMS lookup that mean the project has no rings to adopt: the API is not enabled yet.
NOTHING_TO_ADOPT = ("SERVICE_DISABLED", "has not been used in project", "is disabled", "NOT_FOUND", "notFound")


def existing_kms(project: str, region: str, ring: str, key: str, opts: pulumi.InvokeOptions) -> tuple[str | None, str | None]:
    """Ids of the farm's key ring and key if they exist already (a re-created stack), else None: synchronous
    invokes (the Python SDK runs the event loop until the provider is registered, pulumi/pulumi#3019), as
    `import_` takes a plain id. A lookup that
    fails (a fresh project whose KMS API is not enabled yet has no rings) counts as none."""
    try:
        rings = kms.get_key_rings(location=region, project=project, filter=f"name:{ring}", opts=opts).key_rings or []
        ring_id = next((r.id for r in rings if r.id.endswith(f"/keyRings/{ring}")), None)
        if ring_id is None:
            return None, None
        keys = kms.get_crypto_keys(key_ring=ring_id, filter=f"name:{key}", opts=opts).keys or []
        return ring_id, next((k.id for k in keys if k.id.endswith(f"/cryptoKeys/{key}")), None)
    except Exception as exc:  # noqa: BLE001 - only "the API is off" means there is nothing to adopt
        if any(word in str(exc) for word in NOTHING_TO_ADOPT):
            return None, None
        raise pulumi.RunError(f"dragonfarm:fence: could not check for the farm's KMS key ring {ring} ({exc}); allowed: "
                              f"credentials with cloudkms.keyRings.list on {project}") from None


# APIs the GCP farm calls (Service Usage names): networks and NAT, GKE, KMS, budgets, their
# notification channels and topics, and buckets. Service Usage and Cloud Resource Manager must be on
# already (enabling an API goes through them): a prerequisite, see the README.
REQUIRED_APIS = ("compute.googleapis.com", "container.googleapis.com", "cloudkms.googleapis.com",
                 "billingbudgets.googleapis.com", "monitoring.googleapis.com", "pubsub.googleapis.com",
                 "storage.googleapis.com")


class GcpFence(FarmComponent):
    TOKEN = token("GcpFence")

    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    key_id: pulumi.Output[str]
    pods_range: str = "pods"
    services_range: str = "services"

    def __init__(self, name: str, spec: FenceSpec, *, project: str, region: str, environment: str,
                 protect_data: bool = False, vm_schedules: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        """`vm_schedules`: let Compute Engine's service agent start and stop VMs, which instance schedules
        (a dev box's nightly stop) run as."""
        super().__init__(name, opts, protect_data)
        # A fresh project has none of the APIs the farm uses: enable them first (every child of the fence, and
        # the other layers, wait for them), and keep them on when the stack is destroyed (other workloads of the
        # project may use them).
        self.services = [projects.Service(f"{name}-api-{api.split('.')[0]}", project=project, service=api, disable_on_destroy=False,
                                          opts=self.child()) for api in REQUIRED_APIS]
        self.inherited_deps = [*self.inherited_deps, *self.services]
        self.vm_schedule_grants: list[pulumi.Resource] = []
        if vm_schedules:
            # Compute Engine runs instance schedules as its service agent, which needs compute.instances.start and
            # .stop ("Scheduling a VM instance to start and stop"); attaching a schedule to a VM before that fails
            # with 412. One project-level grant to Google's agent; barns wait for the fence.
            number = organizations.get_project_output(project_id=project, opts=self.invoke()).number
            self.vm_schedule_grants.append(projects.IAMMember(
                f"{name}-vm-schedules", project=project, role="roles/compute.instanceAdmin.v1",
                member=number.apply(lambda n: f"serviceAccount:service-{n}@compute-system.iam.gserviceaccount.com"), opts=self.child()))
        # Flow logs, GKE control-plane and audit logs land in the project's _Default log bucket: it keeps them
        # log_retention_days (Cloud Logging default 30; "Configure log buckets": retention 1-3650 days). The
        # bucket is the project's own: `pulumi destroy` leaves it, with its retention.
        logging.ProjectBucketConfig(f"{name}-log-retention", project=project, location="global", bucket_id="_Default",
                                    retention_days=spec.log_retention_days, opts=self.child())
        self.key_id = self._key(name, project, region) if spec.existing_key_id is None else pulumi.Output.from_input(spec.existing_key_id)
        if spec.existing_network is not None:
            self.network_id = pulumi.Output.from_input(spec.existing_network.network_id)
            self.subnet_id = pulumi.Output.from_input(spec.existing_network.private_subnet_ids[0])
        else:
            self._network(name, spec, project, region, spec.nat_mode(environment))
        self.finish({"network_id": self.network_id, "subnet_id": self.subnet_id, "key_id": self.key_id})

    def _key(self, name: str, project: str, region: str) -> pulumi.Output[str]:
        # Cloud KMS never deletes key rings or keys: `pulumi destroy` only forgets them, and creating them again
        # fails with 409. A ring or key of the farm's name that exists already is adopted (imported) instead.
        ring_name, key_name = f"{name}-keyring", f"{name}-data"
        ring_id, key_id = existing_kms(project, region, ring_name, key_name, pulumi.InvokeOptions(parent=self))
        ring = kms.KeyRing(f"{name}-keyring", name=ring_name, location=region, project=project,
                           opts=self.stateful(import_=ring_id))
        # ABANDON: `pulumi destroy` leaves the key and its versions as they are (the default, DELETE, destroys
        # every version and stops rotation, so an adopted key could encrypt nothing).
        key = kms.CryptoKey(f"{name}-key", name=key_name, key_ring=ring.id, purpose="ENCRYPT_DECRYPT",
                            rotation_period=KEY_ROTATION, deletion_policy="ABANDON", opts=self.stateful(import_=key_id))
        gcs = storage.get_project_service_account_output(project=project, opts=self.invoke()).email_address
        number = organizations.get_project_output(project_id=project, opts=self.invoke()).number
        # The service agents that encrypt with the farm key: Cloud Storage (bucket CMEK), Compute Engine (node
        # and dev-box boot disks: "Protect resources by using Cloud KMS keys", grant the Compute Engine service
        # agent) and GKE (application-layer Secrets encryption: grant the Kubernetes Engine service agent).
        agents = {"gcs": gcs.apply(lambda email: f"serviceAccount:{email}"),
                  "compute": number.apply(lambda n: f"serviceAccount:service-{n}@compute-system.iam.gserviceaccount.com"),
                  "gke": number.apply(lambda n: f"serviceAccount:service-{n}@container-engine-robot.iam.gserviceaccount.com")}
        grants = [kms.CryptoKeyIAMMember(f"{name}-key-{agent}", crypto_key_id=key.id, role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
                                         member=member, opts=self.child()) for agent, member in agents.items()]
        # Hand out the key id only once the grants exist: a bucket, disk or cluster created earlier fails on CMEK.
        return pulumi.Output.all(key.id, *[g.etag for g in grants]).apply(lambda parts: str(parts[0]))

    def _network(self, name: str, spec: FenceSpec, project: str, region: str, nat: NatMode) -> None:
        network = compute.Network(f"{name}-vpc", name=f"{name}-vpc", project=project, auto_create_subnetworks=False,
                                  routing_mode="REGIONAL", opts=self.child())
        private, _ = subnet_plan(spec.cidr, 1)
        log_config: compute.SubnetworkLogConfigArgsDict | None = (
            {"aggregation_interval": "INTERVAL_5_SEC", "flow_sampling": 0.5, "metadata": "INCLUDE_ALL_METADATA"}
            if spec.flow_logs else None)
        subnet = compute.Subnetwork(
            f"{name}-nodes", name=f"{name}-nodes", project=project, region=region, network=network.id,
            ip_cidr_range=private[0], private_ip_google_access=spec.private_endpoints,
            secondary_ip_ranges=[{"range_name": self.pods_range, "ip_cidr_range": str(spec.pods_cidr)},
                                 {"range_name": self.services_range, "ip_cidr_range": str(spec.services_cidr)}],
            log_config=log_config, opts=self.child())
        self.network_id, self.subnet_id = network.id, subnet.id
        if nat is not NatMode.none:
            router = compute.Router(f"{name}-router", name=f"{name}-router", project=project, region=region,
                                    network=network.id, opts=self.child())
            compute.RouterNat(f"{name}-nat", name=f"{name}-nat", project=project, region=region, router=router.name,
                              nat_ip_allocate_option="AUTO_ONLY",
                              source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
                              log_config={"enable": True, "filter": "ERRORS_ONLY"}, opts=self.child())
