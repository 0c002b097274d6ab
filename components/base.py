"""Shared plumbing for every dragonfarm component.

Contract:
- a component's Pulumi type token is ``dragonfarm:index:<Class>``, fixed per class in ``TOKEN``
  (never derived from ``type(self)``: a fork that subclasses must not change URNs);
- children are created with ``self.child()`` so they are parented to the component and inherit
  its providers;
- stateful children (keys, buckets) use ``self.stateful()``, which protects and retains them when
  the component was built with ``protect_data=True`` (prod stacks);
- a component built with ``depends_on`` passes it to its children: the engine does not make a
  component's children wait for what the component depends on (e.g. the cloud APIs being enabled).
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
        after = opts.depends_on if opts is not None else None
        self.inherited_deps: list[Any] = list(after) if isinstance(after, (list, tuple)) else ([after] if after is not None else [])

    def _options(self, kwargs: dict[str, Any]) -> pulumi.ResourceOptions:
        depends = kwargs.pop("depends_on", None) or []
        depends = [*self.inherited_deps, *(depends if isinstance(depends, (list, tuple)) else [depends])]
        return pulumi.ResourceOptions(parent=self, depends_on=depends or None, **kwargs)

    def invoke(self) -> pulumi.InvokeOutputOptions:
        """Options for a lookup: through the component's provider, after what the component depends on (a
        lookup of a cloud API must wait for the API to be enabled)."""
        return pulumi.InvokeOutputOptions(parent=self, depends_on=self.inherited_deps or None)

    def child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for an ordinary child resource."""
        return self._options(kwargs)

    def stateful(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a child that holds data: protected and retained in prod."""
        if self.protect_data:
            kwargs.setdefault("protect", True)
            kwargs.setdefault("retain_on_delete", True)
        return self._options(kwargs)

    def finish(self, outputs: Mapping[str, Any]) -> None:
        self.register_outputs(dict(outputs))

