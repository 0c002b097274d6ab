"""Barn: plain compute, cloud-neutral inputs. Today: GPU dev boxes that stop themselves when idle."""

from __future__ import annotations

from typing import Iterator

from pydantic import Field

from components.breeding_ground import catalog
from components.schema import Context, Problem, Spec


class BarnSpec(Spec):
    gpu: str = "t4"
    """GPU model of the dev box (from the GPU catalog)."""
    gpus: int = Field(default=1, ge=1)
    """GPUs on the dev box."""
    idle_minutes: int = Field(default=60, ge=10, le=1440)
    """Stop the box after this many minutes of low CPU and GPU use, so a forgotten box does not run all weekend."""
    disk_gb: int = Field(default=200, ge=50, le=16384)
    """Encrypted root volume size."""
    spot: bool = False
    """Run the box on spot capacity (cheaper; may be interrupted)."""

    def problems(self, ctx: Context) -> Iterator[Problem]:
        offered = catalog.gpus_on(ctx.cloud)
        if self.gpu not in offered:
            yield Problem("gpu", self.gpu, f"a GPU {ctx.cloud} offers: {', '.join(offered)}")
        elif self.gpus not in catalog.sizes(ctx.cloud, self.gpu):
            yield Problem("gpus", self.gpus, f"one of {', '.join(map(str, catalog.sizes(ctx.cloud, self.gpu)))} for {self.gpu} on {ctx.cloud}")
