"""The stack schema: one cloud-neutral model of a farm, read from the stack's `dragonfarm:` config.

    stack YAML / Pulumi config --load_farm()--> FarmConfig --blueprints.build()--> resources

`load_farm` either returns a valid FarmConfig or raises ConfigError carrying one Problem per bad
key (path, bad value, what is allowed). Nothing is built from a config that has any problem.
Layer inputs are the specs in components/<layer>/spec.py; this module composes them and adds the
checks that need the whole farm (cloud, region and zones, names).
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
from types import UnionType
from typing import Any, Iterator, Literal, Mapping, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError

from components.barn.spec import BarnSpec
from components.breeding_ground.spec import BreedingGroundSpec
from components.fence import regions
from components.fence.spec import FenceSpec
from components.ledger.spec import LedgerSpec, UsageSpec
from components.schema import KEY_RULE, Context, Key, Problem, Spec, nested, only_on, show
from components.trough.spec import TroughSpec
from dragonfarm.guardrails import waiver_problems

NAMESPACE = "dragonfarm"

# Region and zone shapes per cloud: a typo such as 'us-east1' on AWS fails at load, not at deploy.
REGION_RULES: dict[str, tuple[str, str]] = {
    "aws": (r"^(us|eu|ap|ca|sa|me|af|il|mx)(-gov)?-(north|south|east|west|central|northeast|southeast|northwest|southwest)-\d$",
            "an AWS region such as 'us-east-1'"),
    "gcp": (r"^[a-z]+-[a-z]+\d+$", "a GCP region such as 'us-central1'"),
    "azure": (r"^[a-z]+[a-z]*\d*$", "an Azure region such as 'eastus'"),
}
ZONE_COUNT = {"aws": (2, 3), "gcp": (0, 3), "azure": (0, 3)}


def zone_rule(cloud: str, region: str) -> tuple[str, str]:
    if cloud == "aws":
        return rf"^{re.escape(region)}[a-z]$", f"a zone of {region}, such as '{region}a'"
    if cloud == "gcp":
        return rf"^{re.escape(region)}-[a-z]$", f"a zone of {region}, such as '{region}-a'"
    return r"^[1-3]$", "an Azure availability zone: '1', '2' or '3'"


class FarmConfig(Spec):
    cloud: Literal["aws", "gcp", "azure"]
    """Which cloud the farm is built on."""
    region: str
    """The region every regional resource goes in."""
    zones: list[str] = Field(default_factory=list)
    """Zones for subnets and node pools (AWS: 2-3, required; GCP and Azure: optional)."""
    prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{1,16}[a-z0-9]$")
    """Stack name prefix for every resource name: 3-18 lowercase letters, digits, hyphens. Must be unique where names are global (S3, GCS)."""
    environment: Literal["dev", "prod"] = "dev"
    """dev is cheapest (single NAT, nothing protected); prod protects data and spreads NAT per zone."""
    project: str | None = None
    """GCP project id (GCP only)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Extra tags (labels on GCP) on every taggable resource, beside the farm's cost tags."""
    fence: FenceSpec = Field(default_factory=FenceSpec)
    """Network and identity boundary."""
    troughs: dict[Key, TroughSpec] = Field(default_factory=dict)
    """Buckets keyed by name."""
    breeding_ground: BreedingGroundSpec | None = None
    """The GPU cluster. Unset: no cluster."""
    ledger: LedgerSpec
    """Budget and cost alerts (required: every farm has a budget)."""
    barns: dict[Key, BarnSpec] = Field(default_factory=dict)
    """GPU dev boxes keyed by name."""
    usage: UsageSpec = Field(default_factory=UsageSpec)
    """Expected monthly usage, for `dragonfarm cost` only (pulumi up ignores it)."""
    waivers: dict[str, str] = Field(default_factory=dict)
    """Advisory guardrail rules this stack accepts, by id (e.g. DF-AZ-012), each with its reason; shown in every
    `dragonfarm check` report. Mandatory rules cannot be waived."""

    @property
    def ctx(self) -> Context:
        return Context(cloud=self.cloud, environment=self.environment, prefix=self.prefix, region=self.region,
                       zones=tuple(self.placement_zones))

    @property
    def placement_zones(self) -> list[str]:
        """Zones node pools and dev boxes may use: the stack's, or every zone of the region."""
        return list(self.zones) or list(regions.zones(self.cloud, self.region) or [])

    @property
    def prod(self) -> bool:
        return self.environment == "prod"

    def problems(self) -> Iterator[Problem]:
        ctx = self.ctx
        pattern, allowed = REGION_RULES[self.cloud]
        known = regions.zones(self.cloud, self.region)
        if not re.fullmatch(pattern, self.region):
            yield Problem("region", self.region, allowed)
        elif known is None:
            yield Problem("region", self.region, f"a region of {self.cloud} listed in components/fence/regions.csv: "
                                                 f"{', '.join(regions.regions(self.cloud))}")
        else:
            pattern, allowed = zone_rule(self.cloud, self.region)
            for i, zone in enumerate(self.zones):
                if not re.fullmatch(pattern, zone):
                    yield Problem(f"zones[{i}]", zone, allowed)
                elif zone not in known:
                    yield Problem(f"zones[{i}]", zone, f"a zone {self.region} has: {', '.join(known) or 'none (a region without zones)'}")
        low, high = ZONE_COUNT[self.cloud]
        if not low <= len(self.zones) <= high:
            yield Problem("zones", self.zones, f"{low} to {high} distinct zones on {self.cloud}")
        elif len(set(self.zones)) != len(self.zones):
            yield Problem("zones", self.zones, "distinct zones")
        yield from only_on(self.cloud, "gcp", "project", self.project, r"[a-z][a-z0-9-]{4,28}[a-z0-9]",
                           "a GCP project id: 6-30 lowercase letters, digits and hyphens")
        yield from _tag_problems(self.cloud, self.tags)
        yield from nested("fence", self.fence.problems(ctx))
        for key, trough in self.troughs.items():
            yield from nested(f"troughs.{key}", trough.problems(ctx, key))
        if self.breeding_ground is not None:
            yield from nested("breeding_ground", self.breeding_ground.problems(ctx))
        yield from nested("ledger", self.ledger.problems(ctx))
        for key, barn in self.barns.items():
            yield from nested(f"barns.{key}", barn.problems(ctx))
        yield from self._trough_access_problems()
        pools = {k: p.max_nodes for k, p in (self.breeding_ground.gpu_pools if self.breeding_ground else {}).items()}
        yield from nested("usage", self.usage.problems(pools, list(self.troughs), list(self.barns)))
        for key, value, allowed in waiver_problems(self.waivers):
            yield Problem(f"waivers.{key}", value, allowed)

    def placeholders(self) -> Iterator[Problem]:
        """Example values left in a stack that only a real deploy cannot live with: warned by the offline
        plan (a shipped example stack still plans), refused by the Pulumi program before it builds."""
        if self.breeding_ground is not None:
            yield from nested("breeding_ground", self.breeding_ground.placeholders())

    def _trough_access_problems(self) -> Iterator[Problem]:
        users: dict[str, dict[str, Any] | None] = {f"barns.{k}.troughs": b.troughs for k, b in self.barns.items()}
        if self.breeding_ground is not None:
            users.update({f"breeding_ground.teams.{k}.troughs": t.troughs for k, t in self.breeding_ground.teams.items()})
        for path, grants in users.items():
            for key in grants or {}:
                if key not in self.troughs:
                    yield Problem(f"{path}.{key}", key, f"a trough of the stack: {', '.join(self.troughs) or 'none'}")


# Tag rules per cloud: (key pattern, value pattern, what is allowed, reserved key prefix).
# AWS: "Tagging AWS resources", tag naming limits (letters, digits, spaces, _ . : / = + - @; `aws:` reserved);
# Azure: "Use tags to organize your Azure resources", limitations (names up to 512, none of < > % & \ ? /);
# GCP: "Labels" requirements (lowercase letters, digits, _ and -; keys start with a letter; 63 each).
TAG_RULES: dict[str, tuple[str, str, str, str | None]] = {
    "aws": (r"[\w .:/=+\-@]{1,128}", r"[\w .:/=+\-@]{0,256}",
            "an AWS tag: key 1-128 and value 0-256 letters, digits, spaces and _ . : / = + - @", "aws:"),
    "azure": (r"[^<>%&\\?/]{1,512}", r".{0,256}", "an Azure tag: name 1-512 characters, none of < > % & \\ ? /; value at most 256", None),
    "gcp": (r"[a-z][a-z0-9_-]{0,62}", r"[a-z0-9_-]{0,63}",
            "a GCP label: lowercase letters, digits, '_' and '-', at most 63, the key starting with a letter", None),
}


def _tag_problems(cloud: str, tags: dict[str, str]) -> Iterator[Problem]:
    key_rule, value_rule, what, reserved = TAG_RULES[cloud]
    for key, value in tags.items():
        if reserved and key.lower().startswith(reserved):
            yield Problem(f"tags.{key}", key, f"a tag key not starting with '{reserved}' (reserved by {cloud})")
        elif not re.fullmatch(key_rule, key):
            yield Problem(f"tags.{key}", key, what)
        elif not re.fullmatch(value_rule, value):
            yield Problem(f"tags.{key}", value, what)


class ConfigError(Exception):
    """A stack config with problems. str() gives one line per problem."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}: {NAMESPACE}:{p.line()}" for p in self.problems]


def raw_from_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """The `dragonfarm:` keys of a Pulumi config map, with JSON-encoded objects decoded.

    The Pulumi CLI hands structured values to the program as JSON strings; a stack YAML read
    directly has them as objects. Both arrive here as the same dict.
    """
    raw: dict[str, Any] = {}
    for full_key, value in values.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        raw[key] = value
    return raw


def _secret_problems(value: Any, path: str = "") -> Iterator[Problem]:
    """Pulumi secrets (`pulumi config set --secret`) as they sit in a stack file: {secure: <ciphertext>}.

    The Pulumi CLI decrypts them before the program runs; a stack file read directly (the offline plan)
    has only the ciphertext. No farm setting is secret today (they become names, tags and resource
    settings), so a secret is refused, naming the key, never read as a mapping with a key `secure`;
    its ciphertext is never printed.
    """
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            yield Problem(path, "a secret", "a plain value: this setting is not secret (it becomes names, tags or resource "
                                            "settings); set it without --secret")
            return
        for key, item in value.items():
            yield from _secret_problems(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _secret_problems(item, f"{path}[{i}]")


def load_farm(values: Mapping[str, Any], source: str) -> FarmConfig:
    """Validate a Pulumi config map into a FarmConfig, or raise ConfigError with every problem."""
    raw = raw_from_config(values)
    secrets = list(_secret_problems(raw))
    if secrets:
        raise ConfigError(source, secrets)
    try:
        farm = FarmConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, problems_from_pydantic(exc, FarmConfig)) from None
    problems = list(farm.problems())
    if problems:
        raise ConfigError(source, problems)
    return farm


# ---- pydantic errors as Problems ----------------------------------------------------------------

_ALLOWED_BY_TYPE = {
    "missing": "a value (this key is required)",
    "ip_v4_network": "an IPv4 network in CIDR form with no host bits set, e.g. 10.0.0.0/16",
    "dict_type": "a mapping of keys to settings",
    "list_type": "a list",
    "model_type": "a mapping of settings",
    "model_attributes_type": "a mapping of settings",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "string_type": "a string",
}


def problems_from_pydantic(exc: ValidationError, model: type[BaseModel]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for err in exc.errors():
        loc = list(err["loc"])
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        path = _join(loc)
        if path in seen:  # a union reports one error per member; the first says enough
            continue
        seen.add(path)
        kind = err["type"]
        value = err.get("input")
        if is_key:
            allowed = f"a key of {KEY_RULE}"
            value = loc[-1]
        elif kind == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            allowed = f"a known key{hint}: {', '.join(known)}"
            value = loc[-1]
        elif kind == "missing":
            allowed, value = _ALLOWED_BY_TYPE[kind], None
        elif kind in ("literal_error", "enum"):
            allowed = "one of " + str(err.get("ctx", {}).get("expected", "")).replace("'", "")
        elif kind == "string_pattern_mismatch" and path == "prefix":
            allowed = "3-18 lowercase letters, digits and hyphens, starting with a letter"
        elif kind == "string_type" and isinstance(value, (int, float, datetime.date)) and not isinstance(value, bool):
            written = getattr(value, "text", None) or str(value)
            allowed = (f"a string: quote it in the YAML ('{written}'); unquoted, YAML reads {written} as "
                       f"{'a date' if isinstance(value, datetime.date) else 'the number ' + show(value)}")
        elif kind in _ALLOWED_BY_TYPE:
            allowed = _ALLOWED_BY_TYPE[kind]
        else:
            allowed = err["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
        problems.append(Problem(path, value, allowed))
    return problems


def _join(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """Field names of the model found at `loc`, walking through optionals, dicts and lists."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        if _is_model(current):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return []
    current = _unwrap_optional(current)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation
