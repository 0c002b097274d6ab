"""dragonfarm tooling: the offline plan, cost estimate, diffs and CLI around the Pulumi program."""

__version__ = "0.1.0"
