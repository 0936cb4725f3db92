"""House style is checked by the same test command CI runs: ruff (format and lint) and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = ["pipeline", "tests", "bench", "tools"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_and_format() -> None:
    lint = run("ruff", "check", *CODE)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatted = run("ruff", "format", "--check", *CODE)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


@pytest.mark.slow  # a cold mypy run takes half a minute
def test_mypy_on_the_package(tmp_path: Path) -> None:
    checked = run("mypy", "--cache-dir", str(tmp_path / "mypy"), "pipeline")
    assert checked.returncode == 0, checked.stdout + checked.stderr
