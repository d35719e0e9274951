"""A template named by a route is checked at ``alertcast check`` time, not at send time."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertcast.config import load_config
from alertcast.templates import validate_templates


def _config(tmp_path: Path, template: str) -> Path:
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "console.toml").write_text('kind = "console"\n', encoding="utf-8")
    (tmp_path / "rules.toml").write_text(
        f'[route]\nchannels = ["console"]\ntemplate = "{template}"\n', encoding="utf-8"
    )
    cfg = tmp_path / "alertcast.toml"
    cfg.write_text("", encoding="utf-8")
    return cfg


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERTCAST_DATABASE_URL", raising=False)


def test_a_missing_route_template_is_reported_with_file_and_key(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "no-such-template"))
    problems = validate_templates(config)
    assert [(Path(p.file).name, p.key) for p in problems] == [("rules.toml", "route.template")]
    assert "no-such-template" in problems[0].message


def test_a_shipped_route_template_passes(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "earthquake"))
    assert validate_templates(config) == []
