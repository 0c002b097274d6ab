"""The offline plan: run the real Pulumi program in-process under mocks and record what it asks for.

This is NOT `pulumi preview`: no engine, no provider plugins, no cloud. It shows every resource the
program registers (type token, name, parent, the inputs as sent to the provider, and the options
that matter), which is what the cost estimate, guardrails, diffs and inventory tests read.

Mocks accept any nested key, and the SDK camelCases only the keys it knows, so a snake_case key
left in the inputs (outside user-data maps such as tags and labels) is a typo: the plan fails on it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from blueprints.config import ConfigError, FarmConfig, load_farm
from dragonfarm import stacks
from dragonfarm.guardrails.model import SECRET_SIG
from dragonfarm.mocks import FarmMocks

PROJECT = "dragonfarm"
NOTICE = ("offline plan: what the program asks for, run under mocks with no cloud and no engine. "
          "It is not `pulumi preview`: run that with the Pulumi CLI and credentials to see real changes.")

# Maps whose keys are user data (tag keys, label keys, chart values), not provider properties.
USER_MAPS = frozenset({
    "tags", "tagsAll", "defaultTags", "labels", "annotations", "values", "data", "stringData", "matchLabels",
    "nodeSelector", "nodeLabels", "resourceLabels", "userLabels", "selector", "effectiveLabels", "limits", "requests",
    "environmentVariables",
})


class PlanError(Exception):
    """The program asked for something no provider would accept (e.g. a misspelled nested key)."""


class ProgramRefused(Exception):
    """The program itself refused the stack once it knew the deploying identity (pulumi.RunError): bad input
    that only shows with the cloud's answers, reported as one line like a ConfigError."""


@dataclass
class PlannedResource:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool = False
    retainOnDelete: bool = False
    ignoreChanges: list[str] = field(default_factory=list)
    deleteBeforeReplace: bool = False
    aliases: int = 0
    dependsOn: list[str] = field(default_factory=list)
    """URNs the engine waits for before creating this one: explicit depends_on and those its inputs come from."""
    provider: str = ""
    """URN of the explicit provider the resource is created through ("" for the default provider)."""
    importId: str = ""
    """Id of an existing cloud resource the engine adopts instead of creating one ("" to create)."""


@dataclass
class Plan:
    """What a stack's program asks for, plus what the cost estimate needs (budget, usage), so a
    Plan JSON file alone can be priced and diffed."""

    stack: str
    cloud: str
    region: str
    environment: str
    resources: list[PlannedResource]
    prefix: str = ""
    budget: float = 0.0
    currency: str = "USD"
    usage: dict[str, Any] = field(default_factory=dict)
    notice: str = NOTICE
    warnings: list[str] = field(default_factory=list)
    """Example values a real deploy refuses (`pulumi up` stops on them before building anything)."""
    waivers: dict[str, str] = field(default_factory=dict)
    """Advisory guardrail rules the stack waives (`dragonfarm:waivers`), rule id -> reason."""
    _layers: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def to_json(self) -> str:
        body = {
            "notice": self.notice, "stack": self.stack, "cloud": self.cloud, "region": self.region,
            "environment": self.environment, "prefix": self.prefix, "budget": self.budget, "currency": self.currency,
            "usage": self.usage, "warnings": self.warnings, "waivers": self.waivers,
            "resources": [{**asdict(r), "layer": self.layers()[r.urn]} for r in self.resources],
        }
        return json.dumps(body, indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        body = json.loads(text)
        resources = [PlannedResource(**{k: v for k, v in r.items() if k != "layer"}) for r in body["resources"]]
        return cls(body["stack"], body["cloud"], body["region"], body["environment"], resources,
                   prefix=body.get("prefix", ""), budget=body.get("budget", 0.0), currency=body.get("currency", "USD"),
                   warnings=body.get("warnings", []), waivers=body.get("waivers", {}),
                   usage=body.get("usage", {}), notice=body.get("notice", NOTICE))

    def by_urn(self) -> dict[str, PlannedResource]:
        return {r.urn: r for r in self.resources}

    def layers(self) -> dict[str, str]:
        """The layer of every resource by URN: that of its nearest ancestor component with a layer.

        Worked out once per Plan (resources do not change after planning).
        """
        if self._layers is None:
            urns = self.by_urn()
            found: dict[str, str] = {}

            def of(urn: str) -> str:
                if urn not in found:
                    r = urns.get(urn)
                    found[urn] = "farm" if r is None else (_component_layer(r.type) or of(r.parent))
                return found[urn]

            self._layers = {r.urn: of(r.urn) for r in self.resources}
        return self._layers

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str) -> PlannedResource:
        found = [r for r in self.resources if r.type == type_token and r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {type_token} named {name}")
        return found[0]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.resources:
            out[r.type] = out.get(r.type, 0) + 1
        return dict(sorted(out.items()))


# Component tokens name the layer: dragonfarm:index:AwsFence -> fence.
LAYERS = ("fence", "trough", "barn", "breeding_ground", "ledger")
_LAYER_OF_CLASS = {"Fence": "fence", "Trough": "trough", "Barn": "barn", "BreedingGround": "breeding_ground",
                   "GpuStack": "breeding_ground", "Ledger": "ledger"}


def _component_layer(type_token: str) -> str | None:
    """The layer a dragonfarm component type stands for, or None for any other type."""
    if not type_token.startswith("dragonfarm:index:"):
        return None
    cls = type_token.removeprefix("dragonfarm:index:")
    for prefix in ("Aws", "Gcp", "Azure"):
        cls = cls.removeprefix(prefix)
    return _LAYER_OF_CLASS.get(cls)


def layer_of(plan: Plan, resource: PlannedResource) -> str:
    """The layer a resource belongs to (see Plan.layers)."""
    return plan.layers()[resource.urn]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also recording each registration with the options the engine would see."""

    def __init__(self, mocks: FarmMocks) -> None:
        super().__init__(mocks)
        self.records: list[PlannedResource] = []
        self.thread_loops: set[asyncio.AbstractEventLoop] = set()

    def _note_loop(self) -> None:
        # The SDK calls the monitor from worker threads, each of which gets an event loop that is
        # never closed; closing them after the run keeps interpreter exit free of asyncio noise.
        if threading.current_thread() is not threading.main_thread():
            loop = _ensure_event_loop()
            if loop.is_closed():  # a worker thread reused from an earlier run in this process
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
            self.thread_loops.add(loop)

    def close_thread_loops(self) -> None:
        # A copy: after a refused run, worker threads may still be registering (and adding loops).
        for loop in list(self.thread_loops):
            if not loop.is_running() and not loop.is_closed():
                loop.close()
        self.thread_loops.clear()

    def Invoke(self, request: Any) -> Any:
        self._note_loop()
        return super().Invoke(request)

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine qualifies a type with the parent's whole type chain (the root Stack excepted);
        # the stock mock keeps only the parent's last type, which would not match real state.
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        self._note_loop()
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            self.records.append(PlannedResource(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent,
                custom=bool(request.custom), inputs=_plain(inputs), protect=bool(request.protect),
                retainOnDelete=bool(request.retainOnDelete), ignoreChanges=sorted(request.ignoreChanges),
                deleteBeforeReplace=bool(request.deleteBeforeReplace), aliases=len(request.aliases),
                dependsOn=sorted(set(request.dependencies)),
                # A provider reference is "<urn>::<id>"; the URN is what identifies it.
                provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                importId=request.importId,
            ))
        return response




def _plain(value: Any) -> Any:
    """Inputs as JSON-friendly values: whole floats back to ints (the wire has only doubles); secrets unwrapped (a plan
    holds mock values only)."""
    if isinstance(value, dict) and SECRET_SIG in value:
        return _plain(value.get("value"))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items()) if not k.startswith("__")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def typo_keys(inputs: Any, path: str = "") -> Iterator[str]:
    """Paths of snake_case keys the SDK did not translate: keys no provider property has."""
    if isinstance(inputs, dict):
        for key, value in inputs.items():
            here = f"{path}.{key}" if path else key
            if "_" in key and not key.startswith("__"):
                yield here
            if key not in USER_MAPS:
                yield from typo_keys(value, here)
    elif isinstance(inputs, list):
        for i, item in enumerate(inputs):
            yield from typo_keys(item, f"{path}[{i}]")


def refused(records: list[PlannedResource]) -> list[str]:
    """What the engine or a provider would refuse in these registrations: misspelled nested keys (snake_case
    keys the SDK did not translate) and two resources with one URN."""
    typos = [f"{r.type} '{r.name}': input key '{key}' is not a property of the resource (snake_case keys the SDK "
             f"did not translate are misspellings)" for r in records for key in typo_keys(r.inputs)]
    seen: set[str] = set()
    twice = sorted({f"{r.urn}: registered twice (two resources with one type and name); the engine refuses a duplicate URN"
                    for r in records if r.urn in seen or seen.add(r.urn)})
    return typos + twice


def record(program: Callable[[], Any], *, cloud: str, region: str, project: str | None = None, stack: str = "example",
           config: dict[str, Any] | None = None, caller: str | None = None) -> list[PlannedResource]:
    """Run any Pulumi program function under the farm mocks; returns what it registered.

    Used by the plan and by tests that run component README examples. `caller`: the identity the mocks
    say runs `pulumi up`.
    """
    mocks = FarmMocks(cloud, region, project, caller)
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)  # a fresh root Stack per run, so runs in one process do not mix
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()})
    settings._get_rpc_manager().clear()
    runtime: Any = settings.SETTINGS  # its lock and outputs are set dynamically
    with runtime.lock:  # outputs a refused earlier run left pending would raise its error again here
        runtime.outputs.clear()

    def run() -> None:
        program()

    try:
        _sync_await(run_pulumi_func(run))
    finally:
        monitor.close_thread_loops()
    return monitor.records


def run_program(farm: FarmConfig, stack: str, config: dict[str, Any]) -> list[PlannedResource]:
    """Run the blueprint for `farm` under mocks; returns the recorded resources."""
    from blueprints import build

    return record(lambda: build(farm), cloud=farm.cloud, region=farm.region, project=farm.project, stack=stack, config=config,
                  caller=deployer(farm))


def deployer(farm: FarmConfig) -> str | None:
    """Who the offline plan assumes runs `pulumi up`: the stack's first admin that is a person or machine
    identity (AWS: a role as a session of it; GCP: the email of a user: or serviceAccount: admin; Azure: its Entra object id)."""
    if farm.breeding_ground is None or not farm.breeding_ground.admins:
        return None
    admins = farm.breeding_ground.admins
    if farm.cloud == "azure":
        return admins[0].split(":", 1)[1]
    if farm.cloud == "gcp":
        direct = [a for a in admins if not a.startswith("group:")]
        return direct[0].split(":", 1)[1] if direct else None
    parts = admins[0].split(":")
    if parts[5].startswith("role/"):
        return f"arn:aws:sts::{parts[4]}:assumed-role/{parts[5].rsplit('/', 1)[-1]}/dragonfarm-plan"
    return admins[0]


def plan_stack(stack: str) -> Plan:
    """Load, validate and plan a stack (a name under stacks/ or a YAML path).

    Raises StackNotFound, ConfigError (before anything is built) or PlanError.
    """
    name, path = stacks.resolve(stack)
    config = stacks.read_config(path)
    farm = load_farm(config, source=_display(path))
    try:
        records = run_program(farm, name, config)
    except pulumi.RunError as exc:
        raise ProgramRefused(f"{_display(path)}: {exc}") from None
    problems = refused(records)
    if problems:
        raise PlanError("\n".join(problems))
    records.sort(key=lambda r: r.urn)
    return Plan(stack=name, cloud=farm.cloud, region=farm.region, environment=farm.environment, resources=records,
                prefix=farm.prefix, budget=farm.ledger.monthly_budget, currency=farm.ledger.currency,
                usage=farm.usage.model_dump(mode="json"), waivers=dict(farm.waivers),
                warnings=[f"{line} (`pulumi up` refuses this)" for line in ConfigError(_display(path), list(farm.placeholders())).lines()])


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
