"""Blueprints: one per cloud, each composing the five layers from a validated FarmConfig.

`main()` is the Pulumi program (called by __main__.py): read the stack's `dragonfarm:` config,
validate it (one line per bad key, nothing built), then build the cloud's blueprint. Only the
chosen cloud's modules are imported: the provider SDKs are large.
"""

from __future__ import annotations

import importlib

import pulumi

from blueprints.config import ConfigError, FarmConfig, load_farm


def build(farm: FarmConfig) -> pulumi.ComponentResource:
    module = importlib.import_module(f"blueprints.{farm.cloud}")
    return module.build(farm)


def main() -> None:
    from pulumi.runtime import config as runtime_config

    values = dict(runtime_config.CONFIG.get()) or runtime_config.get_config_env()
    source = f"stack {pulumi.get_stack()}"
    try:
        farm = load_farm(values, source=source)
        placeholders = list(farm.placeholders())
        if placeholders:
            raise ConfigError(source, placeholders)
    except ConfigError as exc:
        # RunError prints its message without a traceback.
        raise pulumi.RunError(str(exc)) from None
    build(farm)
