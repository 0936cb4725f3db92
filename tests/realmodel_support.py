"""A real model endpoint for the realmodel tests: named by the environment, or started with bench/real_model.py."""

from __future__ import annotations

import importlib.util
import os
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SKIP_REASON = "llama-cpp-python server or model not installed: run bench/real_model.py"


@dataclass(frozen=True)
class RealEndpoint:
    """Where a real model answers; `model` is None when brief should take the server's first model."""

    base_url: str
    model: str | None


def bench_module() -> ModuleType:
    """bench/real_model.py as a module (bench/ is scripts, not a package)."""
    name = "brief_bench_real_model"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "real_model.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


@contextmanager
def real_endpoint() -> Iterator[RealEndpoint | None]:
    """$BRIEF_REALMODEL_URL (+ $BRIEF_REALMODEL_NAME) if set; else a server started from the installed
    llama venv and assembled model ($BRIEF_REALMODEL_SIZE, default 0.5b), stopped on exit; else None.
    Never installs or downloads anything."""
    url = os.environ.get("BRIEF_REALMODEL_URL")
    if url:
        yield RealEndpoint(url.rstrip("/"), os.environ.get("BRIEF_REALMODEL_NAME") or None)
        return
    bench = bench_module()
    spec = bench.MODELS.get(os.environ.get("BRIEF_REALMODEL_SIZE", "0.5b"))
    home = bench.llm_home()
    python = bench.installed_llama(home)
    model_path = bench.assembled_model(spec, home) if spec is not None else None
    if python is None or model_path is None:
        yield None
        return
    with bench.serve(python, model_path, spec.alias) as server:
        yield RealEndpoint(server.base_url, server.model)


def excerpt(seed: str, max_chars: int) -> str:
    """The first lines of a seed article, whole lines only, up to about `max_chars` characters."""
    lines = (ROOT / "seeds" / seed).read_text(encoding="utf-8").splitlines()
    kept: list[str] = []
    for line in lines:
        if kept and sum(len(k) for k in kept) + len(line) > max_chars:
            break
        kept.append(line)
    return "\n".join(kept) + "\n"


def english_share(text: str) -> float:
    """Share of letters that are ASCII: 1.0 for English, near 0 for Chinese."""
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    return sum(ch.isascii() for ch in letters) / len(letters) if letters else 0.0
