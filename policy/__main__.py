"""The dragonfarm CrossGuard policy pack: `pulumi preview --policy-pack policy` (or `pulumi up --policy-pack policy`).

The rules are not copied here: the repository root is put on sys.path and `dragonfarm.guardrails` (standard library
only) is imported from it, so the pack and `dragonfarm check` run the same functions. `PolicyPack(...)` starts the
analyzer's gRPC server and blocks: the wrapping lives in dragonfarm_policy.py, which the tests import instead.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))         # dragonfarm_policy
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the repository root: dragonfarm.guardrails

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from dragonfarm_policy import policies  # noqa: E402

PolicyPack(name="dragonfarm-guardrails", enforcement_level=EnforcementLevel.ADVISORY, policies=policies())
