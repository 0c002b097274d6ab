"""The neutral view the guardrail rules read, and the rule record itself.

A `Resource` is what both callers can give: `dragonfarm check` builds it from the offline Plan, the
CrossGuard pack (`policy/`) from pulumi-policy's `ResourceValidationArgs` / `PolicyResource`. Inputs
keep their wire names (camelCase, as in the Plan JSON and in `args.props`).

Pure standard library: the pack's venv has pulumi-policy and pulumi, not pydantic or the cloud SDKs.

Unknown values: during `pulumi preview` an input computed from another resource's output is not known
yet. Such a value is held as `UNKNOWN`; reading it through `Resource.get` raises `Unknown`, and the
engine then reports the rule as not evaluated for that resource instead of guessing a verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

Severity = Literal["mandatory", "advisory"]

# The Pulumi wire protocol's sentinels for values unknown during preview (pulumi SDK
# `pulumi/runtime/rpc.py` UNKNOWN, and pulumi-policy `proxy.py` for the typed variants).
UNKNOWN_SENTINELS = frozenset({
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string / any
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})

# The tags (labels on GCP) every taggable resource carries: components/ledger/spec.py cost_tags().
COST_TAG_KEYS = ("dragonfarm-farm", "dragonfarm-environment", "managed-by")
ENVIRONMENT_TAG = "dragonfarm-environment"
PURPOSE_TAG = "dragonfarm-purpose"


class _UnknownMarker:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _UnknownMarker()
"""A value not known until the deploy (a preview's computed input)."""
# How the wire marks a secret value (pulumi.runtime.rpc _special_sig_key): {SECRET_SIG: <secret sig>, "value": ...}.
SECRET_SIG = "4dabf18193072939515e22adb298388d"


class Unknown(Exception):
    """A rule read a value that is not known yet; the rule is not evaluated for that resource.

    `name` is the resource whose value it was, when known (a stack rule then skips that resource only).
    """

    def __init__(self, where: str, name: str = "") -> None:
        super().__init__(f"{where} is not known until the deploy")
        self.where = where
        self.name = name


def plain(value: Any) -> Any:
    """Inputs as plain dicts and lists, with the wire's unknown sentinels turned into UNKNOWN."""
    if value is UNKNOWN:
        return value
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [plain(v) for v in value]
    return value


_MISSING: Any = object()


@dataclass(frozen=True)
class Resource:
    """One resource as a rule sees it."""

    type: str
    name: str
    urn: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool | None = None
    """None when the caller cannot know it (CrossGuard's resource options do not carry it)."""
    parent: str = ""
    provider_inputs: Mapping[str, Any] | None = None
    """The inputs of the provider the resource is created through (default tags/labels live there)."""

    def get(self, path: str, default: Any = None) -> Any:
        """The input at a dotted path (`vpcConfig.endpointPublicAccess`), or `default` when absent.

        Raises Unknown when the value (or a map on the way) is not known yet.
        """
        return dig(self.inputs, path, default, where=f"{self.name}: {path}", name=self.name)

    def tags(self) -> dict[str, Any]:
        """The resource's own tags or labels (the key its type uses), provider defaults not included."""
        for key in ("tags", "labels"):
            value = self.get(key)
            if isinstance(value, Mapping):
                return dict(value)
        return {}

    def default_tags(self) -> dict[str, Any]:
        """Tags the provider adds to every taggable resource: AWS `defaultTags.tags`, GCP `defaultLabels`."""
        inputs = self.provider_inputs or {}
        found: dict[str, Any] = {}
        for key in ("defaultTags", "defaultLabels"):
            value = inputs.get(key)
            if value is UNKNOWN or (isinstance(value, str) and value in UNKNOWN_SENTINELS):
                raise Unknown(f"{self.name}: provider {key}")
            if isinstance(value, str):  # provider inputs arrive JSON-encoded
                try:
                    value = json.loads(value)
                except ValueError:
                    value = None
            if isinstance(value, Mapping):
                inner = value.get("tags", value) if key == "defaultTags" else value
                if isinstance(inner, Mapping):
                    found.update(inner)
        return found


def dig(value: Any, path: str, default: Any = None, where: str = "", name: str = "") -> Any:
    current = value
    for part in path.split("."):
        if current is UNKNOWN:
            raise Unknown(where or path, name)
        if isinstance(current, Mapping):
            current = current.get(part, _MISSING)
        elif isinstance(current, Sequence) and not isinstance(current, str) and part.isdigit():
            index = int(part)
            current = current[index] if index < len(current) else _MISSING
        else:
            current = _MISSING
        if current is _MISSING or current is None:
            return default
    if current is UNKNOWN:
        raise Unknown(where or path, name)
    return current


def known(value: Any, where: str) -> Any:
    """`value`, or Unknown raised when it is not known yet (for values taken out of lists by hand).

    `where` is "<resource name>: <what>", as Resource.get words it.
    """
    if value is UNKNOWN:
        raise Unknown(where, where.split(":", 1)[0] if ":" in where else "")
    return value


def known_items(value: Any, where: str) -> list[Any]:
    """A list input's items, each checked known (an unknown list, or an unknown item, raises Unknown)."""
    return [known(v, where) for v in items(known(value, where))]


def port(value: Any, where: str, default: int) -> int:
    """A port number input: `default` when absent; Unknown raised when not known yet or not a number
    (a preview may carry a port as a string, or as the wire's unknown sentinel)."""
    value = known(value, where)
    if value is None:
        return default
    if isinstance(value, bool):
        raise Unknown(f"{where} (not a port number: {value!r})", where.split(":", 1)[0])
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    raise Unknown(f"{where} (not a port number: {value!r})", where.split(":", 1)[0])


def truthy(value: Any) -> bool:
    """A boolean input; some providers' nested booleans arrive as the strings "true"/"false"."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def items(value: Any) -> list[Any]:
    """A list input as a list (absent: empty)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


@dataclass(frozen=True)
class Stack:
    """Every resource of one stack, for the rules that relate resources to each other."""

    resources: tuple[Resource, ...]

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.type in types]

    def siblings(self, resource: Resource, *types: str) -> list[Resource]:
        """Resources of these types with the same parent component (a barn's VM and its stop schedule)."""
        return [r for r in self.resources if r.type in types and r.parent == resource.parent and r.urn != resource.urn]

    @property
    def environment(self) -> str | None:
        """The farm's environment from its cost tags (provider default tags/labels, else resource tags)."""
        for r in self.resources:
            for tags in (_safe(r.default_tags), _safe(r.tags)):
                value = tags.get(ENVIRONMENT_TAG)
                if isinstance(value, str):
                    return value
            if r.type.startswith("pulumi:providers:"):
                probe = Resource(type=r.type, name=r.name, provider_inputs=r.inputs)
                value = _safe(probe.default_tags).get(ENVIRONMENT_TAG)
                if isinstance(value, str):
                    return value
        return None


def _safe(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return read()
    except Unknown:
        return {}


ResourceCheck = Callable[[Resource], list[str]]
StackCheck = Callable[[Stack], Sequence[tuple[Resource | None, str | Unknown]]]
"""A stack rule's findings: (resource or None, message). A rule that could not read one resource's value gives
(that resource, the Unknown) for it and goes on with the others (see `each`)."""


def each(subjects: Iterable[Resource],
         check: Callable[[Resource], Iterable[tuple[Resource | None, str]]]) -> list[tuple[Resource | None, str | Unknown]]:
    """A stack rule's check run per subject resource: an unknown value stops that subject only."""
    out: list[tuple[Resource | None, str | Unknown]] = []
    for subject in subjects:
        try:
            out.extend(list(check(subject)))
        except Unknown as exc:
            out.append((subject, exc))
    return out


@dataclass(frozen=True)
class Rule:
    """One guardrail. `check` returns what is wrong (empty: passes)."""

    id: str
    title: str
    severity: Severity
    fix: str
    """The remediation, naming the stack key (or the component) that fixes it."""
    check: Callable[..., Any]
    types: tuple[str, ...] = ()
    """Resource type tokens a resource rule applies to (empty for a stack rule)."""
    kind: Literal["resource", "stack"] = "resource"
    checkov: str = ""
    """Checkov ids of the same check where one exists (Terraform checks), else empty."""
    source: str = ""
    """The public page the rule's meaning comes from."""

    @property
    def cloud(self) -> str:
        return self.id.split("-")[1].lower()


REGISTERED: list[Rule] = []


def resource_rule(id: str, title: str, severity: Severity, fix: str, types: tuple[str, ...] | list[str], *,
                  checkov: str = "", source: str = "") -> Callable[[ResourceCheck], ResourceCheck]:
    """Register a rule over one resource of the given types."""
    def wrap(fn: ResourceCheck) -> ResourceCheck:
        REGISTERED.append(Rule(id, title, severity, fix, fn, tuple(types), "resource", checkov, source))
        return fn
    return wrap


def stack_rule(id: str, title: str, severity: Severity, fix: str, *, checkov: str = "",
               source: str = "") -> Callable[[StackCheck], StackCheck]:
    """Register a rule over the whole stack (CrossGuard's stack validation kind)."""
    def wrap(fn: StackCheck) -> StackCheck:
        REGISTERED.append(Rule(id, title, severity, fix, fn, (), "stack", checkov, source))
        return fn
    return wrap


def open_to_world(cidr: Any, where: str = "a CIDR") -> bool:
    """Whether an address range is the whole internet; raises Unknown when the range is not known yet."""
    if cidr is UNKNOWN:
        raise Unknown(where, where.split(":", 1)[0] if ":" in where else "")
    return isinstance(cidr, str) and cidr.strip() in ("0.0.0.0/0", "::/0", "*", "Internet", "Any", "any", "0.0.0.0")


def missing_cost_tags(tags: Mapping[str, Any]) -> list[str]:
    return [k for k in COST_TAG_KEYS if not (isinstance(tags.get(k), str) and tags.get(k))]
