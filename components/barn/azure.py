"""AzureBarn: a GPU dev VM that deallocates itself when idle.

- The smallest catalog size with the box's GPUs, in the first stack zone; Ubuntu 22.04 LTS (Gen2) and the
  NVIDIA driver from Canonical's signed packages at first boot (azure_gpu_driver.sh; the NVIDIA GPU driver
  extension lists no CUDA support on Ubuntu 22.04 and refuses secure boot). Outbound internet through the
  fence's NAT gateway. No public IP: a NIC on the fence's node subnet, whose NSG denies inbound from the internet.
- Entra ID sign-in (AADSSHLoginForLinux extension; people need "Virtual Machine User Login" or
  "Virtual Machine Administrator Login" on the VM, granted outside the farm, and a network path to its private
  address: a VPN or peered network, or Azure Bastion). The admin account gets an SSH key that only the
  stack's encrypted state holds (Azure requires one for a Linux VM): a break-glass, not the way in.
- Trusted Launch with secure boot and vTPM (NCasT4_v3 and NC A100 v4 are Gen2 sizes Trusted Launch supports).
- OS disk of `disk_gb`, encrypted with the farm key through the fence's disk encryption set.
- Spot optional: eviction Deallocate (the box and its disk survive), max price -1 (never evicted for price).

Idle stop: the same in-guest watcher as every barn (idle_watch.sh). A guest power-off leaves an Azure VM
billed, so the watcher's stop command deallocates it through Azure Resource Manager with the VM's own
managed identity (azure_deallocate.sh), which holds the farm's stop-spend role on this VM only. A daily
auto-shutdown schedule (DevTest Labs global schedule, which deallocates) is the backstop, with an email
30 minutes before to the ledger's alert addresses.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pulumi
import pulumi_tls as tls
from pulumi_azure_native import authorization, compute, devtestlab, network

from components.barn.idle import startup_script
from components.azure_rbac import assignment_name, blob_grants
from components.barn.spec import BarnSpec, schedule_time_zone
from components.base import FarmComponent, token

HERE = Path(__file__).parent
# Canonical's Ubuntu 22.04 LTS Gen2 marketplace image (Azure "Find Linux VM images": Canonical offers).
UBUNTU: compute.ImageReferenceArgsDict = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"}
ADMIN_USER = "azureuser"
# Entra ID sign-in ("Sign in to a Linux VM in Azure by using Microsoft Entra ID and OpenSSH": the extension needs
# the VM's system-assigned identity).
ENTRA_LOGIN = ("Microsoft.Azure.ActiveDirectory", "AADSSHLoginForLinux", "1.0")
SHUTDOWN_NOTICE_MINUTES = 30


def first_boot(idle_minutes: int) -> str:
    """The VM's custom data (cloud-init runs it once): the idle watcher deallocating through the API, then the driver."""
    return startup_script(idle_minutes, stop_script=HERE / "azure_deallocate.sh") + (HERE / "azure_gpu_driver.sh").read_text()


class AzureBarn(FarmComponent):
    TOKEN = token("AzureBarn")

    vm_id: pulumi.Output[str]
    connect_command: pulumi.Output[str]

    def __init__(self, name: str, spec: BarnSpec, *, region: str, zones: list[str], resource_group_name: pulumi.Input[str],
                 subnet_id: pulumi.Input[str], disk_encryption_set_id: pulumi.Input[str] | None, stop_role_id: pulumi.Input[str],
                 subscription: pulumi.Input[str], alert_emails: list[str], tags: dict[str, str],
                 troughs: dict[str, tuple[pulumi.Input[str], str]] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        size = spec.instance_type("azure", region)
        zone = spec.zone("azure", size, region, zones) if zones else None
        nic = network.NetworkInterface(f"{name}-nic", network_interface_name=f"{name}-nic", resource_group_name=resource_group_name,
                                       location=region, ip_configurations=[{"name": "primary", "subnet": {"id": subnet_id},
                                                                            "private_ip_allocation_method": "Dynamic"}],
                                       tags=tags, opts=self.child())
        admin_key = tls.PrivateKey(f"{name}-admin-key", algorithm="RSA", rsa_bits=4096, opts=self.child())
        managed_disk: compute.ManagedDiskParametersArgsDict = {"storage_account_type": "StandardSSD_LRS"}
        if disk_encryption_set_id is not None:
            managed_disk["disk_encryption_set"] = {"id": disk_encryption_set_id}
        os_disk: compute.OSDiskArgsDict = {"create_option": "FromImage", "disk_size_gb": spec.disk_gb, "caching": compute.CachingTypes.READ_WRITE,
                                           "managed_disk": managed_disk, "delete_option": "Delete"}
        storage: compute.StorageProfileArgsDict = {"image_reference": UBUNTU, "os_disk": os_disk}
        vm = compute.VirtualMachine(
            name, vm_name=name, resource_group_name=resource_group_name, location=region, zones=[zone] if zone else None,
            hardware_profile={"vm_size": size},
            storage_profile=storage,
            os_profile={"computer_name": name[:64], "admin_username": ADMIN_USER,
                        "custom_data": base64.b64encode(first_boot(spec.idle_minutes).encode()).decode(),
                        "linux_configuration": {
                            "disable_password_authentication": True,
                            "ssh": {"public_keys": [{"path": f"/home/{ADMIN_USER}/.ssh/authorized_keys",
                                                     "key_data": admin_key.public_key_openssh}]}}},
            network_profile={"network_interfaces": [{"id": nic.id, "primary": True, "delete_option": "Delete"}]},
            # Managed boot diagnostics: boot log and screenshot of a box that does not come up (the serial console needs a
            # password sign-in: reset one with the VMAccess extension first).
            diagnostics_profile={"boot_diagnostics": {"enabled": True}},
            security_profile={"security_type": "TrustedLaunch",
                              "uefi_settings": {"secure_boot_enabled": True, "v_tpm_enabled": True}},
            identity={"type": compute.ResourceIdentityType.SYSTEM_ASSIGNED},
            **({"priority": "Spot", "eviction_policy": "Deallocate", "billing_profile": {"max_price": -1.0}} if spec.spot else {}),
            tags=tags,
            # A new admin key or first-boot script must not rebuild the box (and its disk) under its user.
            opts=self.child(ignore_changes=["osProfile"]))
        self.vm_id = vm.id
        principal = vm.identity.apply(lambda i: (i.principal_id if i else None) or "")
        authorization.RoleAssignment(
            f"{name}-stop-self", role_assignment_name=assignment_name(name, "stop-self"), principal_id=principal,
            principal_type="ServicePrincipal", scope=vm.id, role_definition_id=stop_role_id, opts=self.child(delete_before_replace=True))
        if troughs:
            blob_grants(self, name, principal, subscription, troughs, (name,))
        publisher, kind, version = ENTRA_LOGIN
        compute.VirtualMachineExtension(
            f"{name}-entra-login", vm_extension_name=kind, vm_name=vm.name, resource_group_name=resource_group_name, location=region,
            publisher=publisher, type=kind, type_handler_version=version, auto_upgrade_minor_version=True, tags=tags, opts=self.child())
        self._auto_shutdown(name, spec, region, resource_group_name, vm, alert_emails, tags)
        self.connect_command = pulumi.Output.concat("az ssh vm --resource-group ", resource_group_name, " --name ", vm.name,
                                                    "   # from a network that reaches its private address (VPN, peering or Bastion)")
        self.finish({"vm_id": self.vm_id, "vm_size": size, "connect_command": self.connect_command})

    def _auto_shutdown(self, name: str, spec: BarnSpec, region: str, resource_group_name: pulumi.Input[str],
                       vm: compute.VirtualMachine, alert_emails: list[str], tags: dict[str, str]) -> None:
        """The daily backstop (DevTest Labs auto-shutdown of a VM: it must be named shutdown-computevm-<vm>)."""
        if spec.nightly_stop is None:
            return
        notice: devtestlab.NotificationSettingsArgsDict = {"status": "Disabled"}
        if alert_emails:
            notice = {"status": "Enabled", "time_in_minutes": SHUTDOWN_NOTICE_MINUTES, "email_recipient": ";".join(alert_emails),
                      "notification_locale": "en"}
        devtestlab.GlobalSchedule(
            f"{name}-nightly-stop", name=f"shutdown-computevm-{name}", resource_group_name=resource_group_name, location=region,
            status="Enabled", task_type="ComputeVmShutdownTask", daily_recurrence={"time": spec.nightly_stop.replace(":", "")},
            time_zone_id=schedule_time_zone("azure", spec.stop_time_zone("azure", region)), target_resource_id=vm.id,
            notification_settings=notice, tags=tags, opts=self.child())
