"""The idle watcher every barn installs: one script for every cloud, only the stop command differs.

`idle_watch.sh` decides (GPU, CPU and login sessions, minute by minute); `startup_script()` renders
the first-boot script that installs it as a systemd timer. Tests run the watcher itself.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

HERE = Path(__file__).parent
WATCHER = HERE / "idle_watch.sh"


STOP_SCRIPT = "/usr/local/sbin/dragonfarm-stop"


def startup_script(idle_minutes: int, stop_command: str | None = None, stop_script: Path | None = None) -> str:
    """The first-boot script. The machine stops with `stop_command`, or with `stop_script` (a file of this
    package installed as STOP_SCRIPT) where stopping takes more than one command."""
    if (stop_command is None) == (stop_script is None):
        raise ValueError("startup_script: give stop_command or stop_script, not both")
    template = jinja2.Template((HERE / "idle_watch_install.sh.j2").read_text(), keep_trailing_newline=True)
    return template.render(watcher=WATCHER.read_text().rstrip("\n"), idle_minutes=idle_minutes,
                           stop_command=stop_command or STOP_SCRIPT, stop_path=STOP_SCRIPT,
                           stop_script=stop_script.read_text().rstrip("\n") if stop_script is not None else None)
