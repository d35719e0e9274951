"""The core imports no SDK: adapters depend on the core, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "alertcast"
CORE = [
    "domain.py",
    "cap.py",
    "errors.py",
    "audit.py",
    "alert_json.py",
    "ingest.py",
    "i18n.py",
    "lifecycle.py",
    "render.py",
    "rules.py",
    "ports.py",
    "ratelimit.py",
    "dispatch/ledger.py",
    "dispatch/retry.py",
    "dispatch/worker.py",
    "dispatch/cancellation.py",
]
SDKS = ("telegram", "twilio", "feedparser", "aiohttp")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_sdk(module: str) -> None:
    path = PACKAGE / module
    assert path.is_file(), f"core module {module} is missing"
    offending = sorted(name for name in imported_modules(path) if name.split(".")[0] in SDKS)
    assert offending == [], f"{module} imports {offending}"


def test_core_never_imports_adapters() -> None:
    for module in CORE:
        for name in imported_modules(PACKAGE / module):
            assert not name.startswith(
                ("alertcast.channels", "alertcast.feeds", "alertcast.web")
            ), f"{module} imports adapter {name}"


def test_the_checker_sees_an_sdk_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from telegram import Bot\nimport twilio.rest\n", encoding="utf-8")
    assert {"telegram", "twilio.rest"} <= imported_modules(sample)
