"""Building blocks for the cloud-neutral specs and their validation.

Every spec is a strict pydantic model (unknown keys are errors, attribute docstrings become field
descriptions). Checks that need context (the cloud, the environment, sibling fields) are written as
``problems(ctx)`` methods yielding ``Problem``s with a path relative to the spec; the stack schema
prefixes the paths. A ``Problem`` renders as one line: path, the bad value, what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Iterable, Iterator

from pydantic import BaseModel, ConfigDict, StringConstraints

class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


@dataclass(frozen=True)
class Context:
    """What a spec's context-dependent checks need to know about the farm."""

    cloud: str
    environment: str
    prefix: str
    region: str = ""
    zones: tuple[str, ...] = ()
    """The zones the farm may place things in: the stack's, or every zone of the region (regions.csv)."""


@dataclass(frozen=True)
class Problem:
    path: str
    value: Any
    allowed: str

    def line(self) -> str:
        return f"{self.path}: got {show(self.value)}; allowed: {self.allowed}"

    def under(self, prefix: str) -> "Problem":
        joined = f"{prefix}.{self.path}" if self.path and not self.path.startswith("[") else f"{prefix}{self.path}"
        return Problem(joined, self.value, self.allowed)


def show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def nested(prefix: str, problems: Iterable[Problem]) -> Iterator[Problem]:
    for problem in problems:
        yield problem.under(prefix)


# Keys of keyed collections (troughs, pools, barns, teams) become parts of resource names on every
# cloud, so they follow the strictest common rule (GKE node pool and Azure agent pool names).
KEY_PATTERN = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
KEY_RULE = "2-20 characters: lowercase letters, digits and hyphens, starting with a letter"
Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]


def only_on(cloud: str, wanted_cloud: str, key: str, value: str | None, pattern: str, what: str) -> Iterator[Problem]:
    """A setting that one cloud requires and the others must not have (e.g. GCP's project id)."""
    if cloud == wanted_cloud:
        if value is None:
            yield Problem(key, None, f"{what} (required when cloud is {wanted_cloud})")
        elif not re.fullmatch(pattern, value):
            yield Problem(key, value, what)
    elif value is not None:
        yield Problem(key, value, f"unset unless cloud is {wanted_cloud}")


def ordered(pairs: list[tuple[str, int | None]]) -> Iterator[tuple[str, int, str, int]]:
    """Consecutive (earlier, later) pairs among the set values, for 'must come after' checks."""
    present = [(name, value) for name, value in pairs if value is not None]
    for (a, av), (b, bv) in zip(present, present[1:]):
        yield a, av, b, bv


# How each cloud names a person or role that can be given cluster access.
PRINCIPAL_RULES: dict[str, tuple[str, str]] = {
    # EKS access entries take IAM role or user ARNs; a role ARN may include a path (EKS user guide,
    # "Create access entries").
    "aws": (r"arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}", "an IAM role or user ARN such as arn:aws:iam::123456789012:role/ml-admins"),
    "gcp": (r"(user|group|serviceAccount):[^@\s]+@[^@\s]+\.[^@\s]+", "a Google principal such as user:ana@example.com or group:ml@example.com"),
    # Azure role assignments need the principal's type (user, group or service principal) beside its object id:
    # the API refuses a mismatch (UnmatchedPrincipalType), and the SDK would send 'User' for every id.
    "azure": (r"(user|group|servicePrincipal):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
              "an Entra principal as <type>:<object id>, type user, group or servicePrincipal, e.g. group:8f0c...-...-..."),
}


def principal_problems(cloud: str, path: str, principals: list[str]) -> Iterator[Problem]:
    pattern, what = PRINCIPAL_RULES[cloud]
    for i, principal in enumerate(principals):
        if not re.fullmatch(pattern, principal):
            yield Problem(f"{path}[{i}]", principal, what)
    if len(set(principals)) != len(principals):
        yield Problem(path, principals, "distinct principals")


# Kubernetes label syntax ("Labels and Selectors", syntax and character set): an optional DNS-subdomain
# prefix and '/', then a name of 1-63 alphanumerics, '-', '_', '.', alphanumeric at both ends; a value of
# at most 63 of the same, possibly empty.
LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{LABEL_NAME}"
LABEL_VALUE = rf"({LABEL_NAME})?"
# Label domains the cluster or its autoscaler owns: Karpenter refuses NodePool labels in them ("NodePools",
# template.metadata.labels: restricted domains), GKE and AKS reserve kubernetes.io for themselves.
RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "karpenter.sh", "karpenter.k8s.aws", "dragonfarm.io")


def label_key_problem(key: str, reserved: bool = True) -> str | None:
    if len(key) > 316 or not re.fullmatch(LABEL_KEY, key) or len(key.split("/")[0]) > 253:
        return "a Kubernetes label key: [prefix/]name, the name 1-63 letters, digits, '-', '_', '.', alphanumeric at both ends"
    domain = key.split("/")[0] if "/" in key else ""
    if reserved and any(domain == d or domain.endswith("." + d) for d in RESERVED_LABEL_DOMAINS):
        return f"a label key outside the domains the cluster reserves ({', '.join(RESERVED_LABEL_DOMAINS)})"
    return None


def label_problems(path: str, labels: dict[str, str]) -> Iterator[Problem]:
    for key, value in labels.items():
        problem = label_key_problem(key)
        if problem is not None:
            yield Problem(f"{path}.{key}", key, problem)
        elif not re.fullmatch(LABEL_VALUE, value):
            yield Problem(f"{path}.{key}", value, "a Kubernetes label value: at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends")
