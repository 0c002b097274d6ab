"""Mocks that stand in for the Pulumi engine and the cloud providers in an offline plan.

They answer like the clouds do, so code that reads outputs (ARNs, ids, endpoints, key URIs) sees
the shapes it will see for real: deterministic values derived from the resource's name, never
random, so two plans of the same stack are identical. Unknown invokes answer with nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi

ACCOUNT = "123456789012"
SUBSCRIPTION = "00000000-0000-4000-8000-000000000000"
TENANT = "11111111-1111-4111-8111-111111111111"
PROJECT_NUMBER = "424242424242"


def digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def uuid_like(*parts: str) -> str:
    h = digest(*parts, length=32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


class FarmMocks(pulumi.runtime.Mocks):
    """Realistic, deterministic outputs for the resource types dragonfarm creates."""

    def __init__(self, cloud: str, region: str, project: str | None = None, caller: str | None = None) -> None:
        self.cloud = cloud
        self.region = region
        self.project = project or "mock-project"
        self.caller = caller or {"aws": f"arn:aws:iam::{ACCOUNT}:user/dragonfarm", "azure": uuid_like("object")}.get(
            cloud, f"dragonfarm@{self.project}.iam.gserviceaccount.com")
        """Who runs `pulumi up` (AWS: caller identity ARN; GCP: the credentials' email; Azure: the Entra object id)."""

    # -- resources ------------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        typ, name = args.typ, args.name
        if typ.startswith("aws:"):
            rid, extra = self._aws(typ, name, inputs)
        elif typ.startswith("gcp:"):
            rid, extra = self._gcp(typ, name, inputs)
        elif typ.startswith("azure-native:"):
            rid, extra = self._azure(typ, name, inputs)
        elif typ.startswith("kubernetes:"):
            rid, extra = self._kubernetes(typ, name, inputs)
        elif typ == "tls:index/privateKey:PrivateKey":
            # A public key's shape only: no private key exists anywhere in a plan.
            rid, extra = f"{name}-{digest(typ, name, length=8)}", {"publicKeyOpenssh": f"ssh-rsa AAAAB3NzaC1yc2E{digest(name, length=32)} mock"}
        else:
            rid, extra = f"{name}-{digest(typ, name, length=8)}", {}
        return rid, {**inputs, **extra}

    def _aws(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        service = typ.split(":")[1].split("/")[0]
        kind = typ.rsplit(":", 1)[1]
        real_name = str(inputs.get("name") or inputs.get("bucket") or inputs.get("clusterName") or name)
        prefixes = {"Vpc": "vpc", "Subnet": "subnet", "InternetGateway": "igw", "NatGateway": "nat", "Eip": "eipalloc",
                    "RouteTable": "rtb", "SecurityGroup": "sg", "DefaultSecurityGroup": "sg", "VpcEndpoint": "vpce",
                    "FlowLog": "fl", "Instance": "i", "LaunchTemplate": "lt"}
        if kind in prefixes:
            rid = f"{prefixes[kind]}-{digest(name)}"
        elif kind in ("Bucket", "Role", "Cluster", "LogGroup", "Policy", "Queue", "Topic", "InstanceProfile"):
            rid = real_name
        else:
            rid = f"{name}-{digest(typ, name, length=8)}"
        region = self.region
        arn = {
            "s3": f"arn:aws:s3:::{real_name}",
            "iam": f"arn:aws:iam::{ACCOUNT}:{kind.lower()}/{real_name}",
            "kms": f"arn:aws:kms:{region}:{ACCOUNT}:key/{uuid_like(name)}",
            "sqs": f"arn:aws:sqs:{region}:{ACCOUNT}:{real_name}",
            "sns": f"arn:aws:sns:{region}:{ACCOUNT}:{real_name}",
            "eks": f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{real_name}",
            "cloudwatch": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{real_name}",
        }.get(service, f"arn:aws:{service}:{region}:{ACCOUNT}:{kind.lower()}/{rid}")
        extra: dict[str, Any] = {"arn": arn, "tagsAll": inputs.get("tags", {})}
        if service == "kms" and kind == "Key":
            rid = uuid_like(name)
            extra["keyId"] = rid
        elif kind == "Bucket":
            extra.update(bucket=real_name, bucketRegionalDomainName=f"{real_name}.s3.{region}.amazonaws.com")
        elif kind == "Vpc":
            extra.update(defaultSecurityGroupId=f"sg-{digest(name, 'default')}", mainRouteTableId=f"rtb-{digest(name, 'main')}")
        elif kind in ("Role", "Queue", "Topic", "LogGroup", "InstanceProfile", "Policy"):
            extra.update(name=real_name)
            if kind == "Queue":
                extra["url"] = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{real_name}"
        elif service == "eks" and kind == "Cluster":
            extra.update(
                endpoint=f"https://{digest(name, length=32).upper()}.gr7.{region}.eks.amazonaws.com",
                certificateAuthority={"data": "TU9DSy1DQQ=="},
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{digest(name, length=32).upper()}"}]}],
                vpcConfig={**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{digest(name, 'cluster')}"},
                status="ACTIVE",
            )
        elif service == "eks" and kind == "NodeGroup":
            extra.update(status="ACTIVE")
        elif kind == "Instance":
            extra.update(privateIp="10.0.1.10", primaryNetworkInterfaceId=f"eni-{digest(name)}")
        return rid, extra

    def _gcp(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        real_name = str(inputs.get("name") or name)
        service = typ.split(":")[1].split("/")[0]
        kind = typ.rsplit(":", 1)[1]
        location = str(inputs.get("location") or inputs.get("region") or self.region).lower()
        project = str(inputs.get("project") or self.project)
        if service == "kms" and kind == "KeyRing":
            rid = f"projects/{project}/locations/{location}/keyRings/{real_name}"
        elif service == "kms" and kind == "CryptoKey":
            rid = f"{inputs.get('keyRing')}/cryptoKeys/{real_name}"
        elif service == "compute":
            scope = "global" if kind in ("Network", "Firewall") else f"regions/{self.region}"
            rid = f"projects/{project}/{scope}/{kind[0].lower() + kind[1:]}s/{real_name}"
        elif service == "container":
            rid = f"projects/{project}/locations/{location}/clusters/{real_name}"
        elif service == "serviceaccount":
            rid = f"projects/{project}/serviceAccounts/{real_name}@{project}.iam.gserviceaccount.com"
        else:
            rid = real_name
        extra: dict[str, Any] = {"name": real_name, "selfLink": f"https://www.googleapis.com/{service}/v1/{rid}"}
        if kind == "Account" and service == "serviceaccount":
            extra["email"] = f"{inputs.get('accountId', real_name)}@{project}.iam.gserviceaccount.com"
            extra["member"] = f"serviceAccount:{extra['email']}"
        elif kind == "Cluster" and service == "container":
            extra.update(endpoint="10.0.0.2", masterAuth={"clusterCaCertificate": "TU9DSy1DQQ=="})
        elif kind == "Instance" and service == "compute":
            rid = f"projects/{project}/zones/{inputs.get('zone')}/instances/{real_name}"
            extra["instanceId"] = str(int(digest(name, length=12), 16))
        elif kind == "Function":
            rid = f"projects/{project}/locations/{location}/functions/{real_name}"
        elif kind == "Topic":
            rid = f"projects/{project}/topics/{real_name}"
        return rid, extra

    def _azure(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        module, kind = typ.split(":")[1], typ.rsplit(":", 1)[1]
        real_name = str(inputs.get("resourceName") or inputs.get("resourceGroupName" if kind == "ResourceGroup" else "") or
                        inputs.get(f"{kind[0].lower()}{kind[1:]}Name") or inputs.get("accountName") or inputs.get("vaultName") or name)
        group = inputs.get("resourceGroupName", real_name)
        provider = {"network": "Microsoft.Network", "storage": "Microsoft.Storage", "keyvault": "Microsoft.KeyVault",
                    "containerservice": "Microsoft.ContainerService", "compute": "Microsoft.Compute",
                    "managedidentity": "Microsoft.ManagedIdentity", "authorization": "Microsoft.Authorization",
                    "consumption": "Microsoft.Consumption", "monitor": "Microsoft.Insights", "logic": "Microsoft.Logic",
                    "devtestlab": "Microsoft.DevTestLab"}.get(module, f"Microsoft.{module}")
        plural = kind[0].lower() + (kind[1:-1] + "ies" if kind.endswith("ty") else kind[1:] + "s")
        rid = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}" if kind == "ResourceGroup"
               else f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/{provider}/{plural}/{real_name}")
        if kind == "RoleDefinition":
            rid = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{inputs.get('roleDefinitionId')}"
        if kind == "BlobContainer":
            rid = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/"
                   f"{inputs.get('accountName')}/blobServices/default/containers/{inputs.get('containerName')}")
            real_name = str(inputs.get("containerName"))
        extra: dict[str, Any] = {"name": real_name}
        identity = inputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # A list of identity ids going in, a map of id -> details coming out.
            extra["identity"] = {**identity, "userAssignedIdentities": {
                i: {"principalId": uuid_like(str(i), "p"), "clientId": uuid_like(str(i), "c")}
                for i in identity["userAssignedIdentities"]}}
        if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type", "")):
            extra["identity"] = {**extra.get("identity", identity), "principalId": uuid_like(name, "system"), "tenantId": TENANT}
        if kind == "Vault":
            extra["properties"] = {**inputs.get("properties", {}), "vaultUri": f"https://{real_name}.vault.azure.net/"}
        elif kind == "Key":
            vault = inputs.get("vaultName", "vault")
            extra.update(keyUri=f"https://{vault}.vault.azure.net/keys/{real_name}",
                         keyUriWithVersion=f"https://{vault}.vault.azure.net/keys/{real_name}/{digest(name, length=32)}")
        elif kind == "UserAssignedIdentity":
            extra.update(principalId=uuid_like(name, "principal"), clientId=uuid_like(name, "client"), tenantId=TENANT)
        elif kind == "ManagedCluster":
            extra.update(fqdn=f"{real_name}-{digest(name, length=8)}.privatelink.{self.region}.azmk8s.io",
                         oidcIssuerProfile={"issuerURL": f"https://{self.region}.oic.prod-aks.azure.com/{TENANT}/{uuid_like(name)}/"},
                         identityProfile={"kubeletidentity": {"objectId": uuid_like(name, "kubelet")}})
        elif kind == "PublicIPAddress":
            extra["ipAddress"] = f"52.0.{int(digest(name, length=2), 16) % 250}.{int(digest(name, 'ip', length=2), 16) % 250 + 1}"
        elif kind == "StorageAccount":
            extra["primaryEndpoints"] = {"blob": f"https://{real_name}.blob.core.windows.net/"}
        return rid, extra

    def _kubernetes(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        metadata = dict(inputs.get("metadata") or {})
        metadata.setdefault("name", name)
        metadata["uid"] = uuid_like(typ, name)
        namespace = metadata.get("namespace")
        rid = f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])
        if typ.startswith("kubernetes:helm.sh"):
            return rid, {"status": {"status": "deployed", "namespace": inputs.get("namespace", "default")}}
        return rid, {"metadata": metadata}

    # -- invokes --------------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT, "arn": self.caller, "userId": "AIDAMOCK", "id": ACCOUNT},
            "aws:index/getRegion:getRegion": {"name": self.region, "region": self.region, "id": self.region},
            "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"},
            "aws:ec2/getAmi:getAmi": {"id": f"ami-{digest(json.dumps(args.args, sort_keys=True, default=str))}",
                                      "architecture": "x86_64", "mostRecent": True},
            "azure-native:logic:listWorkflowTriggerCallbackUrl": {
                "value": f"https://prod-00.{self.region}.logic.azure.com/workflows/{digest(json.dumps(args.args, sort_keys=True, default=str))}"
                         f"/triggers/{args.args.get('triggerName')}/paths/invoke?api-version=2016-10-01&sig=mock"},
            "azure-native:authorization:getClientConfig": {
                "clientId": uuid_like("client"), "objectId": self.caller if self.cloud == "azure" else uuid_like("object"),
                "subscriptionId": SUBSCRIPTION, "tenantId": TENANT},
            "gcp:organizations/getProject:getProject": {"number": PROJECT_NUMBER, "projectId": self.project},
            "gcp:organizations/getClientOpenIdUserInfo:getClientOpenIdUserInfo": {"email": self.caller, "id": self.caller},
            "gcp:compute/getImage:getImage": {
                "selfLink": f"https://www.googleapis.com/compute/v1/projects/{args.args.get('project')}/global/images/"
                            f"{args.args.get('family')}-v20261101", "name": f"{args.args.get('family')}-v20261101"},
            # A fresh project: no key ring left behind by an earlier stack.
            "gcp:kms/getKeyRings:getKeyRings": {"keyRings": [], "id": "mock"},
            "gcp:storage/getProjectServiceAccount:getProjectServiceAccount": {
                "emailAddress": f"service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"},
        }
        return answers.get(args.token, {}), []
