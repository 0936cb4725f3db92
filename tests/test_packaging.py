"""A plain (non-editable) install must carry the prompts and the tokenizer file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # builds a wheel

_NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "out", "build", "dist", "*.egg-info", "__pycache__", ".*cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools writes build/ beside the sources, and the checkout stays untouched.
    source = tmp_path_factory.mktemp("src") / "brief"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("brief-*.whl"))


def test_wheel_ships_prompts_and_encoding(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    prompts = {p.name for p in (ROOT / "prompts").glob("*.md")}
    assert prompts and all(f"pipeline/prompt_files/{name}" in names for name in prompts)
    assert "pipeline/data/cl100k_base.tiktoken" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_package_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """Unpack the wheel away from the repository and use it: prompts and tokens load from the package."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import pipeline, pathlib;"
        "from pipeline.model.prompts import load_prompt; from pipeline.ingest.tokens import count_tokens;"
        "assert pathlib.Path(pipeline.__file__).is_relative_to(pathlib.Path(__import__('sys').argv[1]));"
        "import pipeline.model.backends.openai_http, pipeline.checks, pipeline.batchjob, pipeline.sources.web;"
        "p = load_prompt('map'); print(p.id, count_tokens('hello world'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(site)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty")},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    newest = max(int(f.name.split(".")[1][1:]) for f in (ROOT / "prompts").glob("map.v*.md"))
    assert done.stdout.split() == [f"map.v{newest}", "2"]  # the newest prompt file is installed


def test_building_leaves_no_build_folder_in_the_checkout(wheel: Path) -> None:
    assert not (ROOT / "build").exists()
