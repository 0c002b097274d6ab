"""GcpBarn: a GPU dev VM that stops itself when idle.

A Deep Learning VM image (NVIDIA driver and CUDA installed at first boot), the smallest catalog machine
with the box's GPUs in a zone that sells them, no external IP (out through the fence's Cloud NAT),
reached with `gcloud compute ssh --tunnel-through-iap` (IAP TCP forwarding: a firewall rule admits SSH
from IAP's range only, to this box only) and OS Login (people sign in with their Google identity; they
need roles/iap.tunnelResourceAccessor and roles/compute.osLogin, granted outside the farm). Shielded VM
(vTPM, integrity monitoring; secure boot off: the DLVM's driver modules are not signed for it), boot disk
of `disk_gb` encrypted with the farm key, `on_host_maintenance: TERMINATE` (GPU VMs cannot live-migrate).
Spot optional: preempted boxes stop, they are not deleted.

Idle stop: the same in-guest watcher as every barn (components/barn/idle_watch.sh) powers the VM off
after `idle_minutes` of idle GPUs and CPU with nobody logged in; a guest power-off stops a Compute
Engine VM, and a stopped VM bills no vCPU, memory or GPU (only its disk). A nightly instance schedule
(resource policy) stops it anyway, as a backstop. Compute Engine refuses to attach a schedule to a VM
unless its service agent may already start and stop it (error 412): the fence grants that once per
project (`GcpFence(vm_schedules=True)`) and every barn waits for the fence.
"""

from __future__ import annotations

import pulumi
from pulumi_gcp import compute, serviceaccount

from components.barn.idle import startup_script
from components.barn.spec import BarnSpec
from components.base import FarmComponent, token
from components.breeding_ground import catalog
from components.breeding_ground.gcp import bucket_grants, service_account_id

# Deep Learning VM images (Google Cloud Deep Learning VM docs, "Choose an image"): public project and a
# CUDA 12.8 family on Ubuntu 22.04 with the NVIDIA 570 driver, installed on first boot when asked.
DLVM_PROJECT = "deeplearning-platform-release"
DLVM_FAMILY = "common-cu128-ubuntu-2204-nvidia-570"
# IAP TCP forwarding connects from this range (Identity-Aware Proxy docs, "Using IAP for TCP forwarding":
# create a firewall rule allowing ingress from 35.235.240.0/20).
IAP_RANGE = "35.235.240.0/20"
# Machine families whose GPUs are attached as guest accelerators; A2, A3 and G2 machine types come with theirs.
ATTACHED_GPU_FAMILIES = ("n1-",)


class GcpBarn(FarmComponent):
    TOKEN = token("GcpBarn")

    instance_id: pulumi.Output[str]
    connect_command: pulumi.Output[str]
    zone: str
    instance_name: str

    def __init__(self, name: str, spec: BarnSpec, *, project: str, region: str, zones: list[str], network_id: pulumi.Input[str],
                 subnet_id: pulumi.Input[str], key_id: pulumi.Input[str], labels: dict[str, str],
                 troughs: dict[str, tuple[pulumi.Input[str], str]] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        machine = spec.instance_type("gcp", region)
        self.zone = spec.zone("gcp", machine, region, zones)
        self.instance_name = name
        account = serviceaccount.Account(f"{name}-sa", account_id=service_account_id(name, "box"), project=project,
                                         display_name=f"{name} dev box", opts=self.child())
        if troughs:
            bucket_grants(self, name, account.member, troughs)
        compute.Firewall(f"{name}-iap-ssh", name=f"{name}-iap-ssh", project=project, network=network_id, direction="INGRESS",
                         source_ranges=[IAP_RANGE], allows=[{"protocol": "tcp", "ports": ["22"]}],
                         target_service_accounts=[account.email], description=f"SSH to {name} through IAP only", opts=self.child())
        image = compute.get_image_output(family=DLVM_FAMILY, project=DLVM_PROJECT, opts=self.invoke())
        schedule = self._nightly_stop(name, spec, project, region)
        accelerators: list[compute.InstanceGuestAcceleratorArgsDict] = []
        if machine.startswith(ATTACHED_GPU_FAMILIES):
            found = catalog.instance("gcp", machine)
            assert found is not None
            accelerators = [{"type": found.accelerator, "count": spec.gpus}]
        scheduling: compute.InstanceSchedulingArgsDict = {"on_host_maintenance": "TERMINATE", "automatic_restart": not spec.spot}
        if spec.spot:
            scheduling.update(provisioning_model="SPOT", preemptible=True, instance_termination_action="STOP")
        instance = compute.Instance(
            name, name=name, project=project, zone=self.zone, machine_type=machine,
            # Provider default labels reach the VM, not its boot disk: the farm's cost labels go on the disk too.
            boot_disk={"initialize_params": {"image": image.self_link, "size": spec.disk_gb, "type": "pd-balanced", "labels": dict(labels)},
                       "kms_key_self_link": key_id},
            network_interfaces=[{"subnetwork": subnet_id}],  # no access_configs: no external IP
            guest_accelerators=accelerators, scheduling=scheduling,
            shielded_instance_config={"enable_secure_boot": False, "enable_vtpm": True, "enable_integrity_monitoring": True},
            service_account={"email": account.email, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]},
            metadata={"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE", "install-nvidia-driver": "True",
                      "startup-script": startup_script(spec.idle_minutes, "systemctl poweroff")},
            resource_policies=schedule.self_link if schedule is not None else None,
            labels={"dragonfarm-barn": name},
            # A new image in the family must not replace the box (and its disk) under its user.
            opts=self.child(ignore_changes=["bootDisk.initializeParams.image"]))
        self.instance_id = instance.instance_id
        self.connect_command = pulumi.Output.concat("gcloud compute ssh ", instance.name, " --zone ", self.zone, " --project ", project,
                                                    " --tunnel-through-iap")
        self.finish({"instance_id": self.instance_id, "machine_type": machine, "connect_command": self.connect_command})

    def _nightly_stop(self, name: str, spec: BarnSpec, project: str, region: str) -> compute.ResourcePolicy | None:
        if spec.nightly_stop is None:
            return None
        hour, minute = spec.nightly_stop.split(":")
        return compute.ResourcePolicy(
            f"{name}-nightly-stop", name=f"{name}-nightly-stop", project=project, region=region,
            description=f"Backstop: stop {name} every day at {spec.nightly_stop}",
            instance_schedule_policy={"vm_stop_schedule": {"schedule": f"{int(minute)} {int(hour)} * * *"},
                                      "time_zone": spec.stop_time_zone("gcp", region)},
            opts=self.child())

