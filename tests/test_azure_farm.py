"""The Azure farm around its cluster: etcd KMS and disk encryption, the dev box that deallocates itself, the
budget's action groups and hard stop, the Key Vault's name after a destroy, and their cost lines.

Each expectation cites the public page it comes from (Microsoft Learn / MicrosoftDocs repositories: azure-aks-docs,
azure-compute-docs, azure-docs, entra-docs; Unicode CLDR windowsZones.xml) or a price row quoted here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from components.barn.azure import first_boot
from components.fence.azure import STOP_SPEND_ACTIONS
from dragonfarm.cost import estimate
from tests.conftest import ROOT, plan_config, planned, stack_config

ROLE = "azure-native:authorization:RoleAssignment"
# Built-in role ids (Azure built-in roles reference).
CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"


def one(plan, type_token: str, suffix: str = ""):
    found = [r for r in plan.of_type(type_token) if r.name.endswith(suffix)]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def grants_to(plan, principal: str) -> dict[str, str]:
    """role definition guid -> scope, for every assignment to `principal`."""
    return {r.inputs["roleDefinitionId"].rsplit("/", 1)[1]: r.inputs["scope"] for r in plan.of_type(ROLE)
            if r.inputs["principalId"] == principal}


# -- cluster encryption -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["azure-dev", "azure-prod"])
def test_etcd_secrets_are_encrypted_with_a_key_of_their_own_in_kms_public_mode(stack):
    plan = planned(stack)
    cluster = one(plan, "azure-native:containerservice:ManagedCluster")
    kms = cluster.inputs["securityProfile"]["azureKeyVaultKms"]
    vault = one(plan, "azure-native:keyvault:Vault", "-etcd-kv")
    key = one(plan, "azure-native:keyvault:Key", "-etcd-key")
    # AKS "Add KMS etcd encryption": a versioned key id (…/keys/<name>/<version>) with encrypt and decrypt, in a vault
    # that is either public (KMS Public mode) or private with a private endpoint ("Creating or updating keys in a private
    # key vault that doesn't have a private endpoint isn't supported"); never one limited to selected networks.
    assert kms["enabled"] is True and kms["keyVaultNetworkAccess"] == "Public" and "keyVaultResourceId" not in kms
    assert kms["keyId"].startswith(f"https://{vault.inputs['vaultName']}.vault.azure.net/keys/etcd/")
    assert re.fullmatch(r"https://[a-z0-9-]+\.vault\.azure\.net/keys/etcd/[0-9a-f]{32}", kms["keyId"])
    props = vault.inputs["properties"]
    assert props["networkAcls"] == {"defaultAction": "Allow"} and "publicNetworkAccess" not in props
    assert props["enableRbacAuthorization"] is True and props["enablePurgeProtection"] is True
    assert sorted(key.inputs["properties"]["keyOps"]) == ["decrypt", "encrypt"]
    # An expired version stops KMS from decrypting (AKS KMS observability, KeyExpired): no expiry, no rotation policy.
    assert "rotationPolicy" not in key.inputs["properties"] and "attributes" not in key.inputs["properties"]
    # Only the cluster identity may use it: the one role assignment on the etcd vault.
    on_vault = [r for r in plan.of_type(ROLE) if r.inputs["scope"].endswith(f"/vaults/{vault.inputs['vaultName']}")]
    assert [r.inputs["roleDefinitionId"].rsplit("/", 1)[1] for r in on_vault] == [CRYPTO_USER]


@pytest.mark.parametrize("stack", ["azure-dev", "azure-prod"])
def test_control_plane_identity_may_use_the_etcd_key_and_read_the_disk_encryption_set_before_the_cluster(stack):
    plan = planned(stack)
    cluster = one(plan, "azure-native:containerservice:ManagedCluster")
    identity = one(plan, "azure-native:managedidentity:UserAssignedIdentity", "-control-plane")
    principal = [r for r in plan.of_type(ROLE) if r.name.endswith("-control-plane-network")][0].inputs["principalId"]
    grants = grants_to(plan, principal)
    vault = one(plan, "azure-native:keyvault:Vault", "-etcd-kv")
    # KMS: Key Vault Crypto User (AKS KMS doc); a disk encryption set: Reader for the cluster identity (AKS "Bring your
    # own keys with Azure managed disks"); KMS refuses a system-assigned cluster identity.
    assert grants[CRYPTO_USER].endswith(f"/vaults/{vault.inputs['vaultName']}")
    assert grants[READER] == cluster.inputs["diskEncryptionSetID"]
    assert cluster.inputs["identity"]["type"] == "UserAssigned"
    assert cluster.inputs["identity"]["userAssignedIdentities"][0].endswith(f"/userAssignedIdentities/{identity.inputs['resourceName']}")
    grant_urns = {r.urn for r in plan.of_type(ROLE) if r.inputs["principalId"] == principal}
    assert len(grant_urns) == 3 and grant_urns <= set(cluster.dependsOn), "the cluster must wait for its identity's grants"


def test_node_and_dev_box_disks_use_the_farm_key_through_one_disk_encryption_set():
    plan = planned("azure-dev")
    des = one(plan, "azure-native:compute:DiskEncryptionSet")
    data_key = one(plan, "azure-native:keyvault:Key", "-fence-key")
    # Managed disks' customer-managed keys: a fully versioned key URL, customer-key encryption, the set following
    # new versions itself (azure-compute-docs disk-encryption.md, automatic key rotation); its identity holds Key Vault
    # Crypto Service Encryption User on the vault (AKS "Bring your own keys").
    assert des.inputs["encryptionType"] == "EncryptionAtRestWithCustomerKey" and des.inputs["rotationToLatestKeyVersionEnabled"] is True
    assert re.fullmatch(rf"https://.+/keys/{data_key.inputs['keyName']}/[0-9a-f]{{32}}", des.inputs["activeKey"]["keyUrl"])
    assert des.inputs["identity"] == {"type": "SystemAssigned"}
    (grant,) = [r for r in plan.of_type(ROLE) if r.name.endswith("-key-disks")]
    assert grant.inputs["roleDefinitionId"].endswith(CRYPTO_SERVICE_ENCRYPTION_USER)
    assert grant.inputs["scope"] == des.inputs["activeKey"]["sourceVault"]["id"]
    des_id = one(plan, "azure-native:containerservice:ManagedCluster").inputs["diskEncryptionSetID"]
    assert des_id.endswith(f"/diskEncryptionSets/{des.inputs['diskEncryptionSetName']}")
    vm = one(plan, "azure-native:compute:VirtualMachine")
    assert vm.inputs["storageProfile"]["osDisk"]["managedDisk"]["diskEncryptionSet"] == {"id": des_id}


def test_key_vault_names_are_freed_after_a_week_in_dev_and_can_be_recovered(tmp_path):
    # Key Vault soft-delete overview: retention 7 to 90 days; purge protection keeps the name for all of it.
    dev = [r.inputs["properties"] for r in planned("azure-dev").of_type("azure-native:keyvault:Vault")]
    prod = [r.inputs["properties"] for r in planned("azure-prod").of_type("azure-native:keyvault:Vault")]
    assert len(dev) == len(prod) == 2  # the data vault and the etcd vault
    assert {p["softDeleteRetentionInDays"] for p in dev} == {7} and {p["softDeleteRetentionInDays"] for p in prod} == {90}
    assert all(p["enablePurgeProtection"] is True and "createMode" not in p for p in dev + prod)
    config = stack_config("azure-dev")
    config["dragonfarm:fence"]["recover_key_vault"] = True
    vaults = plan_config(config, tmp_path).of_type("azure-native:keyvault:Vault")
    assert {r.inputs["properties"]["createMode"] for r in vaults} == {"recover"}
    assert all("properties.createMode" in r.ignoreChanges for r in vaults)


# -- the dev box ----------------------------------------------------------------------------------------------------

def test_dev_box_is_a_private_trusted_launch_t4_vm_with_entra_sign_in():
    plan = planned("azure-dev")
    vm = one(plan, "azure-native:compute:VirtualMachine")
    # gpu_catalog.csv: "azure,Standard_NC4as_T4_v3,t4,1,4,28,..." is the smallest T4 size.
    assert vm.inputs["hardwareProfile"] == {"vmSize": "Standard_NC4as_T4_v3"}
    assert vm.inputs["zones"] == ["1"]
    nic = one(plan, "azure-native:network:NetworkInterface")
    (ip,) = nic.inputs["ipConfigurations"]
    assert "publicIPAddress" not in ip and ip["subnet"]["id"].endswith("/subnets/nodes")
    # Trusted Launch on a Gen2 image with secure boot and vTPM (azure-compute-docs trusted-launch.md: NC-family supported).
    assert vm.inputs["securityProfile"] == {"securityType": "TrustedLaunch", "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}}
    assert vm.inputs["storageProfile"]["imageReference"]["sku"].endswith("-gen2")
    assert vm.inputs["storageProfile"]["osDisk"]["diskSizeGB"] == 200
    # Entra sign-in: AADSSHLoginForLinux needs the VM's system-assigned identity (entra-docs howto-vm-sign-in-azure-ad-linux).
    assert vm.inputs["identity"] == {"type": "SystemAssigned"}
    ext = one(plan, "azure-native:compute:VirtualMachineExtension")
    assert (ext.inputs["publisher"], ext.inputs["type"]) == ("Microsoft.Azure.ActiveDirectory", "AADSSHLoginForLinux")
    # A Linux VM needs an admin key or password ("Authentication using either SSH or by user name and password must be
    # enabled in Linux profile"): key only, passwords off.
    linux = vm.inputs["osProfile"]["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True and linux["ssh"]["publicKeys"][0]["keyData"].startswith("ssh-rsa ")
    assert "priority" not in vm.inputs  # regular unless the stack asks for spot
    assert vm.inputs["diagnosticsProfile"] == {"bootDiagnostics": {"enabled": True}}  # managed storage: the serial console


def test_idle_stop_deallocates_through_a_role_on_that_vm_only():
    plan = planned("azure-dev")
    vm = one(plan, "azure-native:compute:VirtualMachine")
    role = one(plan, "azure-native:authorization:RoleDefinition")
    # The operations named in Azure's resource provider operations list; nothing that creates, deletes or starts.
    assert role.inputs["permissions"] == [{"actions": STOP_SPEND_ACTIONS}]
    assert "Microsoft.Compute/virtualMachines/deallocate/action" in STOP_SPEND_ACTIONS
    assert not any(a.endswith(("/*", "/delete", "/start/action")) or a == "*" for a in STOP_SPEND_ACTIONS)
    # Writing an agent pool back links its subnet and disk encryption set (AKS "Access and identity options").
    assert {"Microsoft.Network/virtualNetworks/subnets/join/action", "Microsoft.Compute/diskEncryptionSets/read"} <= set(STOP_SPEND_ACTIONS)
    assert role.inputs["assignableScopes"] == [role.inputs["scope"]] and role.inputs["scope"].endswith("/resourceGroups/dfarm-az-dev-fence-rg")
    (self_stop,) = [r for r in plan.of_type(ROLE) if r.name.endswith("-stop-self")]
    assert self_stop.inputs["scope"].endswith(f"/virtualMachines/{vm.inputs['vmName']}")
    assert self_stop.inputs["roleDefinitionId"].endswith("/roleDefinitions/" + role.inputs["roleDefinitionId"])
    script = base64.b64decode(vm.inputs["osProfile"]["customData"]).decode()
    assert script == first_boot(45)  # azure-dev: idle_minutes 45
    assert 'Environment="STOP_COMMAND=/usr/local/sbin/dragonfarm-stop"' in script and "Environment=IDLE_MINUTES=45" in script
    assert script.index("dragonfarm-idle-watch.timer") < script.index("ubuntu-drivers install")  # watcher first


def test_deallocate_script_asks_arm_with_the_vms_own_token(tmp_path):
    """Run azure_deallocate.sh with a fake curl answering as IMDS would (instance-metadata-service.md: resourceId as
    text; how-to-use-vm-token.md: a JSON body with access_token) and check the call it makes."""
    vm_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/box"
    log = tmp_path / "calls"
    curl = tmp_path / "curl"
    curl.write_text(f"""#!/bin/bash
echo "$*" >> {log}
case "$*" in
  *compute/resourceId*) printf '%s' '{vm_id}' ;;
  *oauth2/token*) printf '%s' '{{"access_token": "tok123", "token_type": "Bearer"}}' ;;
  *deallocate*) printf '' ;;
  *) exit 22 ;;
esac
""")
    curl.chmod(curl.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(ROOT / "components/barn/azure_deallocate.sh")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 3
    assert "-H Metadata:true" in calls[0] and "169.254.169.254/metadata/identity/oauth2/token" in calls[1]
    assert "resource=https%3A%2F%2Fmanagement.azure.com%2F" in calls[1]
    assert calls[2] == (f"-sSf -X POST -H Authorization: Bearer tok123 -H Content-Length: 0 "
                        f"https://management.azure.com{vm_id}/deallocate?api-version=2024-07-01")


def test_deallocate_script_fails_loudly_when_metadata_is_unreachable(tmp_path):
    curl = tmp_path / "curl"
    curl.write_text("#!/bin/bash\nexit 7\n")
    curl.chmod(curl.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(ROOT / "components/barn/azure_deallocate.sh")], env=env, capture_output=True, text=True)
    assert run.returncode != 0


def test_nightly_backstop_is_the_vms_auto_shutdown_in_windows_time_with_a_notice():
    plan = planned("azure-dev")
    vm = one(plan, "azure-native:compute:VirtualMachine")
    schedule = one(plan, "azure-native:devtestlab:GlobalSchedule").inputs
    # The portal's and CLI's auto-shutdown resource: shutdown-computevm-<vm>, ComputeVmShutdownTask, HHMM daily.
    assert schedule["name"] == f"shutdown-computevm-{vm.inputs['vmName']}" and schedule["taskType"] == "ComputeVmShutdownTask"
    assert schedule["dailyRecurrence"] == {"time": "2100"} and schedule["status"] == "Enabled"
    # eastus is in America/New_York (regions.csv); CLDR windowsZones.xml maps it to "Eastern Standard Time".
    assert schedule["timeZoneId"] == "Eastern Standard Time"
    assert schedule["targetResourceId"].endswith(f"/virtualMachines/{vm.inputs['vmName']}")
    assert schedule["notificationSettings"] == {"status": "Enabled", "timeInMinutes": 30, "emailRecipient": "ml-platform@example.com",
                                                "notificationLocale": "en"}


def test_spot_dev_box_is_deallocated_on_eviction_and_never_priced_out(tmp_path):
    config = stack_config("azure-dev")
    config["dragonfarm:barns"]["box"]["spot"] = True
    vm = one(plan_config(config, tmp_path), "azure-native:compute:VirtualMachine").inputs
    # Azure Spot VMs: eviction policy Deallocate keeps the disk; max price -1 means up to the pay-as-you-go price.
    assert (vm["priority"], vm["evictionPolicy"], vm["billingProfile"]) == ("Spot", "Deallocate", {"maxPrice": -1})


# -- ledger ---------------------------------------------------------------------------------------------------------

def test_budget_alerts_go_through_an_email_action_group():
    plan = planned("azure-prod")
    group = one(plan, "azure-native:monitor:ActionGroup", "-alerts")
    # Action group ARM reference: short name at most 12 characters, location Global.
    assert len(group.inputs["groupShortName"]) <= 12 and group.inputs["location"] == "Global"
    assert [e["emailAddress"] for e in group.inputs["emailReceivers"]] == ["ml-platform@example.com", "finops@example.com"]
    budget = one(plan, "azure-native:consumption:Budget").inputs
    # 50/80/100 % actual and 100 % forecasted, each through the group (contact groups: subscription-scope budgets only).
    assert sorted(budget["notifications"]) == ["actual-100", "actual-50", "actual-80", "forecast-100"]
    assert budget["scope"].startswith("/subscriptions/") and "/resourceGroups/" not in budget["scope"]
    group_id = f"/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/dfarm-az-prod-fence-rg/providers/Microsoft.Insights/actionGroups/{group.inputs['actionGroupName']}"
    assert {n["thresholdType"] for n in budget["notifications"].values()} == {"Actual", "Forecasted"}
    assert all(n["contactGroups"] == [group_id] and n["contactEmails"] == [] for n in budget["notifications"].values())
    assert not plan.of_type("azure-native:logic:Workflow")  # hard stop off in azure-prod


def test_hard_stop_scales_every_gpu_agent_pool_to_zero_and_deallocates_dev_boxes(tmp_path):
    config = stack_config("azure-dev")
    config["dragonfarm:ledger"]["hard_stop"] = True
    config["dragonfarm:breeding_ground"]["gpu_pools"]["a100"] = {"gpu": "a100-80gb", "capacity": "spot-with-fallback", "max_nodes": 2}
    plan = plan_config(config, tmp_path)
    workflow = one(plan, "azure-native:logic:Workflow").inputs
    cluster_id = "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/dfarm-az-dev-fence-rg/providers/Microsoft.ContainerService/managedClusters/dfarm-az-dev-cluster"
    pools = [r.inputs["agentPoolName"] for r in plan.of_type("azure-native:containerservice:AgentPool")]
    assert len(pools) == 3  # t4 spot, a100 spot + regular
    assert workflow["parameters"]["agentPools"]["type"] == "Array"
    assert sorted(workflow["parameters"]["agentPools"]["value"]) == sorted(f"{cluster_id}/agentPools/{p}" for p in pools)
    vm = one(plan, "azure-native:compute:VirtualMachine")
    assert workflow["parameters"]["virtualMachines"]["value"] == [
        f"/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/dfarm-az-dev-fence-rg/providers/Microsoft.Compute/virtualMachines/{vm.inputs['vmName']}"]
    definition = workflow["definition"]
    assert definition == json.loads((ROOT / "components/ledger/hard_stop_azure/workflow.json").read_text())
    pool_loop = definition["actions"]["ScaleGpuPoolsToZero"]
    # AKS runs one agent pool operation at a time per cluster: the loop runs sequentially.
    assert pool_loop["runtimeConfiguration"] == {"concurrency": {"repetitions": 1}}
    put = pool_loop["actions"]["PoolAtZeroWithoutAutoscaler"]["inputs"]
    assert put["method"] == "PUT" and "'enableAutoScaling', false" in put["body"]["properties"] and "'count', 0" in put["body"]["properties"]
    assert "removeProperty(removeProperty(" in put["body"]["properties"]  # min/max count go with the autoscaler
    # AKS answers the write 200/201 while the pool is Updating (azure-rest-api-specs AgentPools_Update example) and
    # Logic Apps waits only on 202; a busy pool refuses a write with 409 ("Another operation (Scaling) is in progress",
    # Azure/AKS#1561): the loop waits for a finished state before the write and after it.
    idle, settle = pool_loop["actions"]["WaitUntilPoolIdle"], pool_loop["actions"]["WaitUntilPoolSettled"]
    assert pool_loop["actions"]["ReadPool"]["runAfter"] == {"WaitUntilPoolIdle": ["Succeeded"]}
    assert settle["runAfter"] == {"PoolAtZeroWithoutAutoscaler": ["Succeeded"]}
    for loop, poll in ((idle, "PollBefore"), (settle, "PollAfter")):
        assert loop["type"] == "Until" and loop["actions"][poll]["inputs"]["method"] == "GET"
        assert loop["expression"] == (f"@contains(createArray('Succeeded', 'Failed', 'Canceled'), "
                                      f"body('{poll}')?['properties']?['provisioningState'])")
    # Deallocate answers 202 with a status URL outside the resource group the role covers: not followed.
    assert definition["actions"]["DeallocateDevBoxes"]["actions"]["Deallocate"]["operationOptions"] == "DisableAsyncPattern"
    # It acts as itself, with the farm's stop-spend role on the farm's resource group.
    (grant,) = [r for r in plan.of_type(ROLE) if r.name.endswith("-ledger-hard-stop")]
    assert grant.inputs["scope"].endswith("/resourceGroups/dfarm-az-dev-fence-rg")
    role = one(plan, "azure-native:authorization:RoleDefinition")
    assert grant.inputs["roleDefinitionId"].endswith(role.inputs["roleDefinitionId"])
    stop_group = one(plan, "azure-native:monitor:ActionGroup", "-hard-stop-group").inputs
    (receiver,) = stop_group["logicAppReceivers"]
    assert receiver["resourceId"].endswith("/workflows/dfarm-az-dev-hard-stop") and "/triggers/BudgetActionGroup/" in receiver["callbackUrl"]
    # A failed run alerts the budget's people (Logic Apps metric RunsFailed, Microsoft.Logic/workflows).
    failed = one(plan, "azure-native:monitor:MetricAlert").inputs
    assert failed["scopes"] == [receiver["resourceId"]] and failed["criteria"]["allOf"][0]["metricName"] == "RunsFailed"
    assert failed["actions"] == [{"actionGroupId": "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/dfarm-az-dev-fence-rg"
                                                   "/providers/Microsoft.Insights/actionGroups/dfarm-az-dev-budget-alerts"}]
    notifications = one(plan, "azure-native:consumption:Budget").inputs["notifications"]
    stop_id = f"/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/dfarm-az-dev-fence-rg/providers/Microsoft.Insights/actionGroups/{stop_group['actionGroupName']}"
    # Only the actual 100 % notification stops anything; the forecast at 100 % only warns.
    assert [k for k, n in notifications.items() if n["contactGroups"] == [stop_id]] == ["actual-100"]


# -- cost -----------------------------------------------------------------------------------------------------------

def test_cost_prices_the_dev_box_by_its_hours_and_disk():
    lines = {line.name: line for line in estimate(planned("azure-dev")).lines}
    box = lines["dfarm-az-dev-box"]
    # compute.csv: "azure,eastus,Standard_NC4as_T4_v3,0.526,..."; fees.csv: azure eastus block_storage 0.075 GB-month.
    # azure-dev usage: barn_hours box 120; disk_gb default 200.
    assert box.monthly == pytest.approx(120 * 0.526 + 200 * 0.075)
    assert box.without == pytest.approx(730 * 0.526 + 200 * 0.075)


def test_no_azure_resource_is_left_unclassified():
    for stack in ("azure-dev", "azure-prod"):
        report = estimate(planned(stack))
        assert not [u.name for u in report.unpriced() if "no price rule" in u.detail], stack
