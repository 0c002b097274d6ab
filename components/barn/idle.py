"""The idle watcher every barn installs: one script for every cloud, only the stop command differs.

`idle_watch.sh` decides (GPU, CPU and login sessions, minute by minute); `startup_script()` renders
the first-boot script that installs it as a systemd timer. Tests run the watcher itself.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

HERE = Path(__file__).parent
WATCHER = HERE / "idle_watch.sh"


def startup_script(idle_minutes: int, stop_command: str) -> str:
    template = jinja2.Template((HERE / "idle_watch_install.sh.j2").read_text(), keep_trailing_newline=True)
    return template.render(watcher=WATCHER.read_text().rstrip("\n"), idle_minutes=idle_minutes, stop_command=stop_command)
