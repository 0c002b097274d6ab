"""dragonfarm's guardrail rules as pulumi-policy policies: one policy per rule, named by the rule id.

Mandatory rules are MANDATORY (a violation stops `pulumi up`), advisory rules ADVISORY. A rule that reads a value
unknown during preview is marked not applicable for that resource ("unknown until the deploy"), as pulumi-policy
does for its own unknowns. Resource options: CrossGuard passes `protect` and `parent`, not `retainOnDelete`, so
rules that read retention skip it here. Waivers are a `dragonfarm check` feature: at deploy time, set a waived
advisory rule to `disabled` in a policy config file (`pulumi preview --policy-pack policy --policy-pack-config ...`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel, PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy,
    StackValidationArgs, StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError  # noqa: E402

from dragonfarm.guardrails import RULES, Resource, Rule, Stack, Unknown  # noqa: E402
from dragonfarm.guardrails.engine import resource_findings, stack_findings  # noqa: E402
from dragonfarm.guardrails.model import SECRET_SIG, UNKNOWN, plain  # noqa: E402


def unproxy(value: Any) -> Any:
    """pulumi-policy's unknown-checking proxies as plain data, each unknown value as UNKNOWN (rules then skip it)."""
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = unproxy(value[key])
            except UnknownValueError:
                out[key] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = []
        for i in range(len(value)):
            try:
                items.append(unproxy(value[i]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def _provider_inputs(provider: Any) -> Mapping[str, Any] | None:
    return plain(unproxy(provider.props)) if provider is not None else None


def view(resource_type: str, name: str, urn: str, props: Any, opts: Any, provider: Any) -> Resource:
    return Resource(type=resource_type, name=name, urn=urn, inputs=plain(unproxy(props)),
                    protect=bool(getattr(opts, "protect", False)), retain_on_delete=None,
                    parent=getattr(opts, "parent", None) or "", provider_inputs=_provider_inputs(provider))


def _level(rule: Rule) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if rule.severity == "mandatory" else EnforcementLevel.ADVISORY


def _description(rule: Rule) -> str:
    checkov = f" [{rule.checkov}]" if rule.checkov else ""
    return f"{rule.title}{checkov}. Fix: {rule.fix}"


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        resource = view(args.resource_type, args.name, args.urn, args.props, args.opts, args.provider)
        found = resource_findings(rule, resource)
        if isinstance(found, Unknown):
            args.not_applicable(f"{found.where} is unknown until the deploy")
        for message in found:
            report_violation(f"{message}. Fix: {rule.fix}", None)

    return ResourceValidationPolicy(name=rule.id, description=_description(rule), validate=validate,
                                    enforcement_level=_level(rule), remediation_steps=rule.fix, url=rule.source or None)




def wire_inputs(props: Any) -> Any:
    """What the rules read from a stack policy's resource. Stack policies see outputs: for a resource already in the
    state, azure-native's outputs are the API's response with the inputs kept under `__inputs` (often a secret):
    the inputs, by their wire names, are laid over the outputs so the rules see what the program asked for."""
    props = plain(unproxy(props))
    if not isinstance(props, Mapping) or "__inputs" not in props:
        return props
    kept = props["__inputs"]
    if isinstance(kept, Mapping) and SECRET_SIG in kept:
        kept = kept.get("value")
    rest = {k: v for k, v in props.items() if k != "__inputs"}
    return {**rest, **kept} if isinstance(kept, Mapping) else rest


def stack_view(resources: Sequence[PolicyResource]) -> Stack:
    out = []
    for r in resources:
        parent = r.parent.urn if r.parent is not None else (getattr(r.opts, "parent", None) or "")
        out.append(Resource(type=r.resource_type, name=r.name, urn=r.urn, inputs=wire_inputs(r.props),
                            protect=bool(getattr(r.opts, "protect", False)), retain_on_delete=None, parent=parent,
                            provider_inputs=_provider_inputs(r.provider)))
    return Stack(tuple(out))


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        found = stack_findings(rule, stack_view(args.resources))
        if isinstance(found, Unknown):
            args.not_applicable(f"{found.where} is unknown until the deploy")
        for resource, message in found:
            report_violation(f"{message}. Fix: {rule.fix}", resource.urn if resource is not None and resource.urn else None)

    return StackValidationPolicy(name=rule.id, description=_description(rule), validate=validate,
                                 enforcement_level=_level(rule), remediation_steps=rule.fix, url=rule.source or None)


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [resource_policy(r) if r.kind == "resource" else stack_policy(r) for r in RULES]
