"""scripts/crash_run.py, one short cycle, so that the recorded crash runs cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_one_kill_9_cycle_reports_nothing_lost(tmp_path: Path):
    storage = f"sqlite:///{tmp_path / 'crash.sqlite3'}"

    options = ["--storage", storage, "--cycles", "1", "--seconds", "0.5", "--devices", "4"]
    result = subprocess.run(
        [sys.executable, "-m", "scripts.crash_run", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.splitlines()[-1]
    assert "acknowledged but lost: 0; stored twice: 0; never stored after the retries: 0" in summary
    acknowledged = int(re.search(r"(\d+) acknowledged", summary).group(1))  # type: ignore[union-attr]
    assert acknowledged > 10
