"""Shared plumbing for every dragonfarm component.

Contract:
- a component's Pulumi type token is ``dragonfarm:index:<Class>``, fixed per class in ``TOKEN``
  (never derived from ``type(self)``: a fork that subclasses must not change URNs);
- children are created with ``self.child()`` so they are parented to the component and inherit
  its providers;
- stateful children (keys, buckets) use ``self.stateful()``, which protects and retains them when
  the component was built with ``protect_data=True`` (prod stacks).
"""

from __future__ import annotations

from typing import Any, Mapping

import pulumi

TOKEN_PREFIX = "dragonfarm:index:"


def token(class_name: str) -> str:
    return TOKEN_PREFIX + class_name


class FarmComponent(pulumi.ComponentResource):
    """Base class: parents children, applies the data-protection policy, registers outputs."""

    TOKEN: str = ""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None, protect_data: bool = False) -> None:
        if not self.TOKEN:
            raise TypeError(f"{type(self).__name__} must set TOKEN")
        super().__init__(self.TOKEN, name, None, opts)
        self.name = name
        self.protect_data = protect_data

    def child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for an ordinary child resource."""
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def stateful(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a child that holds data: protected and retained in prod."""
        if self.protect_data:
            kwargs.setdefault("protect", True)
            kwargs.setdefault("retain_on_delete", True)
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def finish(self, outputs: Mapping[str, Any]) -> None:
        self.register_outputs(dict(outputs))

