"""Running the rules: over a list of `Resource`s (from a Plan or from CrossGuard), with a stack's waivers.

A rule that reads a value not known yet (preview) is reported as not evaluated for that resource, never as
passed or failed. Waivers apply to advisory rules only; a waived finding is still reported, marked waived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from dragonfarm.guardrails.model import REGISTERED, Resource, Rule, Stack, Unknown, plain


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    type: str
    name: str
    urn: str
    message: str
    fix: str
    waived: str = ""
    """The waiver's reason when the stack waives this (advisory) rule."""

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "type": self.type, "name": self.name, "urn": self.urn,
                "message": self.message, "fix": self.fix, "waived": self.waived}


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    not_evaluated: list[tuple[str, str, str]] = field(default_factory=list)
    """(rule id, resource name or 'stack', what was unknown)."""
    waivers: dict[str, str] = field(default_factory=dict)
    rules: int = 0
    resources: int = 0

    @property
    def mandatory(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "mandatory"]

    @property
    def advisory(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "advisory"]

    def as_dict(self) -> dict[str, Any]:
        return {"rules": self.rules, "resources": self.resources, "mandatory": len(self.mandatory),
                "advisory": len(self.advisory), "findings": [f.as_dict() for f in self.findings],
                "waivers": self.waivers, "not_evaluated": [list(n) for n in self.not_evaluated]}


def rules() -> list[Rule]:
    return sorted(REGISTERED, key=lambda r: r.id)


def _rule_error(rule: Rule, name: str, exc: Exception) -> Unknown:
    """A rule that raised (an input shape it does not expect): not evaluated, with the error, never a traceback."""
    return Unknown(f"{name}: {rule.id} could not be evaluated ({type(exc).__name__}: {exc})", name)


def resource_findings(rule: Rule, resource: Resource) -> list[str] | Unknown:
    """What a resource rule says about one resource, or the Unknown that stopped it (a rule that raised any other
    exception is reported the same way, as not evaluated, with the error)."""
    try:
        return [str(m) for m in rule.check(resource)]
    except Unknown as exc:
        return exc
    except Exception as exc:  # noqa: BLE001  a rule's error must not stop the others
        return _rule_error(rule, resource.name, exc)


def stack_outcome(rule: Rule, stack: Stack) -> tuple[list[tuple[Resource | None, str]], list[Unknown]]:
    """A stack rule's findings, and what stopped it: per resource (a rule's `each`) or for the whole stack."""
    found: list[tuple[Resource | None, str]] = []
    unknown: list[Unknown] = []
    try:
        for r, message in rule.check(stack):
            if isinstance(message, Unknown):
                if not message.name and r is not None:
                    message.name = r.name
                unknown.append(message)
            else:
                found.append((r, str(message)))
    except Unknown as exc:  # the whole rule stopped: not evaluated for the stack, whichever resource it was reading
        return found, [Unknown(exc.where)]
    except Exception as exc:  # noqa: BLE001
        return found, [Unknown(_rule_error(rule, "stack", exc).where)]
    return found, unknown


def stack_findings(rule: Rule, stack: Stack) -> list[tuple[Resource | None, str]] | Unknown:
    """A stack rule's findings; its Unknown when something stopped it and it found nothing else (the CrossGuard pack
    reports the findings it has and marks the rule not applicable only when there are none)."""
    found, unknown = stack_outcome(rule, stack)
    if unknown and not found:
        return unknown[0]
    return found


def check(resources: Iterable[Resource], waivers: Mapping[str, str] | None = None,
          only: Iterable[Rule] | None = None) -> Report:
    resources = tuple(resources)
    chosen = list(only) if only is not None else rules()
    waivers = dict(waivers or {})
    report = Report(waivers=waivers, rules=len(chosen), resources=len(resources))
    stack = Stack(resources)

    def add(rule: Rule, r: Resource | None, message: str) -> None:
        waived = waivers.get(rule.id, "") if rule.severity == "advisory" else ""
        report.findings.append(Finding(rule.id, rule.severity, r.type if r else "stack", r.name if r else "(stack)",
                                       r.urn if r else "", message, rule.fix, waived))

    for rule in chosen:
        if rule.kind == "stack":
            found, unknown = stack_outcome(rule, stack)
            for exc in unknown:
                report.not_evaluated.append((rule.id, exc.name or "stack", exc.where))
            for r, message in found:
                add(rule, r, message)
            continue
        for r in resources:
            if r.type not in rule.types:
                continue
            messages = resource_findings(rule, r)
            if isinstance(messages, Unknown):
                report.not_evaluated.append((rule.id, r.name, messages.where))
                continue
            for message in messages:
                add(rule, r, message)
    report.findings.sort(key=lambda f: (f.severity != "mandatory", f.rule, f.name, f.message))
    return report


def resources_from_plan(plan: Any) -> list[Resource]:
    """The neutral view of a Plan (dragonfarm.plan.Plan, or its JSON as a dict)."""
    raw = plan["resources"] if isinstance(plan, Mapping) else plan.resources
    rows = [r if isinstance(r, Mapping) else r.__dict__ for r in raw]
    by_urn = {r["urn"]: r for r in rows}
    out = []
    for r in rows:
        provider = by_urn.get(r.get("provider") or "")
        out.append(Resource(type=r["type"], name=r["name"], urn=r["urn"], inputs=plain(r.get("inputs") or {}),
                            protect=bool(r.get("protect")), retain_on_delete=bool(r.get("retainOnDelete")),
                            parent=r.get("parent") or "",
                            provider_inputs=plain(provider["inputs"]) if provider else None))
    return out


def waiver_problems(waivers: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(key, bad value, what is allowed) for each waiver that names no rule, a mandatory rule, or gives no reason."""
    by_id = {r.id: r for r in rules()}
    advisory = sorted(i for i, r in by_id.items() if r.severity == "advisory")
    out = []
    for rule_id, reason in waivers.items():
        rule = by_id.get(rule_id)
        if rule is None:
            out.append((rule_id, rule_id, f"the id of an advisory rule: {', '.join(advisory)}"))
        elif rule.severity == "mandatory":
            out.append((rule_id, rule_id, f"an advisory rule ({rule_id} is mandatory and cannot be waived): {', '.join(advisory)}"))
        elif not isinstance(reason, str) or not reason.strip():
            out.append((rule_id, reason, "a reason: why the stack accepts this finding"))
    return out


def rules_markdown() -> str:
    """The README's rules table (generated: `dragonfarm check --rules-markdown`)."""
    lines = ["| id | title | severity | kind | checkov |", "|---|---|---|---|---|"]
    for r in rules():
        lines.append(f"| {r.id} | {r.title} | {r.severity} | {r.kind} | {r.checkov or '—'} |")
    return "\n".join(lines) + "\n"
