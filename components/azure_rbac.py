"""Azure role assignments shared by the Azure components (one place, so every grant is written alike): built-in
role ids, stable assignment names, and the blob grants a managed identity gets on its troughs."""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization

from components.base import FarmComponent

# Built-in role definitions (Azure built-in roles reference).
ROLES = {
    "crypto-service-encryption-user": "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "network-contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
    "reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "key-vault-crypto-user": "12338af0-0e69-4776-bea7-57ae8d297424",
    "aks-rbac-cluster-admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
    "aks-rbac-writer": "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
    "aks-cluster-user": "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
    "blob-reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "blob-contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
}
BLOB_ROLES = {"read": "blob-reader", "read-write": "blob-contributor"}


def blob_grants(owner: FarmComponent, name: str, principal_id: pulumi.Input[str], subscription: pulumi.Input[str],
                troughs: dict[str, tuple[pulumi.Input[str], str]], guid_parts: tuple[str, ...]) -> None:
    """Storage Blob Data Reader or Contributor for a managed identity on each trough's container, nothing wider
    (assignment names from `guid_parts` and the trough)."""
    for trough, (container, access) in troughs.items():
        authorization.RoleAssignment(
            f"{name}-trough-{trough}", role_assignment_name=assignment_name(*guid_parts, trough), principal_id=principal_id,
            principal_type="ServicePrincipal", scope=container, role_definition_id=role_id(subscription, BLOB_ROLES[access]),
            # A re-created identity gets a new principal id under the same assignment name: delete first.
            opts=owner.child(delete_before_replace=True))


def role_id(subscription: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("/subscriptions/", subscription, "/providers/Microsoft.Authorization/roleDefinitions/", ROLES[role])


def assignment_name(*parts: str) -> str:
    """Role assignment names are GUIDs: a stable one per farm, scope and principal."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "dragonfarm/" + "/".join(parts)))
