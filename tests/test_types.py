"""pyright (standard mode) over components/, blueprints/ and dragonfarm/: mocks do not catch wrong value
types or bad nested keys of the provider SDKs' typed dicts; the type checker does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pyright_is_clean():
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent)) or "pyright"
    run = subprocess.run([pyright, "components", "blueprints", "dragonfarm"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 errors" in run.stdout
