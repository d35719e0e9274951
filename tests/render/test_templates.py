"""Templates: the package defaults, and every problem ``validate_templates`` must catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertcast.config import Config, load_config
from alertcast.render import sample_contexts
from alertcast.templates import (
    PACKAGE_TEMPLATES,
    TEMPLATE_NAMES,
    ResolvedTemplate,
    TemplateSet,
    validate_templates,
)
from alertcast.text_safety import telegram_html_problems
from tests.render.alerts import TEXT_KINDS
from tests.render.telegram_checker import telegram_errors


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
@pytest.mark.parametrize("language", ["es", "en"])
def test_every_default_template_exists_and_renders_every_sample(name: str, language: str) -> None:
    path = PACKAGE_TEMPLATES / f"{name}.{language}.j2"
    assert path.is_file()
    templates = TemplateSet()
    resolved = ResolvedTemplate(name, language, path, f"package/{path.name}")
    for kind in TEXT_KINDS:
        markup = "html" if kind == "telegram" else "text"
        for context in sample_contexts(kind, markup, language):
            output = templates.render(resolved, markup, context)
            if markup == "html":
                assert telegram_errors(output) == []
                assert telegram_html_problems(output) == []
            assert "None" not in output


def _config(tmp_path: Path, channels: dict[str, str] | None = None) -> Config:
    (tmp_path / "alertcast.toml").write_text("")
    folder = tmp_path / "channels"
    (folder / "templates").mkdir(parents=True)
    for name, body in (channels or {}).items():
        (folder / f"{name}.toml").write_text(body)
    return load_config(tmp_path / "alertcast.toml")


def _write(config: Config, relative: str, source: str) -> Path:
    path = config.templates_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def test_no_templates_no_problems(tmp_path: Path) -> None:
    assert validate_templates(_config(tmp_path)) == []


def test_a_good_override_passes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, "telegram/road.es.j2", "{{ icon('🔴') }} {{ b(headline) }}\n{{ link(url) }}")
    _write(config, "sms/weather.en.j2", "{{ headline }} {{ road.km }} {{ parameters.get('x') }}")
    assert validate_templates(config) == []


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = _write(config, "telegram/road.es.j2", "{{ headline }}\n\n{% if area %}\n{{ area }}\n")
    (problem,) = validate_templates(config)
    assert problem.file == str(path)
    assert problem.key == "line 4"
    assert "endif" in problem.message


def test_a_missing_field_is_found_even_in_a_branch_the_samples_skip(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = _write(
        config,
        "x/weather.es.j2",
        "{{ headline }}\n{% if status == 'Nunca' %}\n{{ headlin }}\n{% endif %}\n",
    )
    (problem,) = validate_templates(config)
    assert (problem.file, problem.key) == (str(path), "line 3")
    assert "unknown field 'headlin'" in problem.message


def test_a_misspelt_field_of_road_is_found(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, "sms/road.es.j2", "{{ road.road }}\n{{ road.kilometro }}")
    (problem,) = validate_templates(config)
    assert problem.key == "line 2"
    assert "road.kilometro" in problem.message


def test_a_failure_while_rendering_names_file_and_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = _write(config, "x/default.es.j2", "{{ headline }}\n{{ parameters.magnitud }}\n")
    (problem,) = validate_templates(config)
    assert (problem.file, problem.key) == (str(path), "line 2")
    assert "magnitud" in problem.message


def test_an_unknown_filter_is_a_problem(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, "x/default.es.j2", "{{ headline|shout }}")
    (problem,) = validate_templates(config)
    assert "shout" in problem.message


def test_telegram_templates_must_produce_html_telegram_accepts(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, "telegram/default.es.j2", "<div>{{ headline }}</div>")
    problems = validate_templates(config)
    assert problems and all("Telegram refuses" in p.message for p in problems)


def test_misplaced_and_misnamed_files_are_problems(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, "pager/default.es.j2", "{{ headline }}")
    _write(config, "x/default.j2", "{{ headline }}")
    _write(config, "default.es.j2", "{{ headline }}")
    messages = sorted(p.message for p in validate_templates(config))
    assert len(messages) == 3
    assert any("neither a configured channel nor a channel kind" in m for m in messages)
    assert any("<name>.<lang>.j2" in m for m in messages)


def test_a_channels_named_template_must_exist(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {
            "console": 'kind = "console"\n[options]\nlanguage = "es"\ntemplate = "capufe"\n',
        },
    )
    (problem,) = validate_templates(config)
    assert problem.file.endswith("console.toml")
    assert problem.key == "options.template"
    assert "'capufe'" in problem.message
    _write(config, "console/capufe.es.j2", "{{ headline }}")
    assert validate_templates(config) == []


def test_a_template_in_a_configured_channels_folder_is_checked_in_its_format(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, {"avisos": 'kind = "console"\n'})
    _write(config, "avisos/default.es.j2", "{{ b(headline) }}")
    assert validate_templates(config) == []


def test_rendering_options_of_channels_are_checked_too(tmp_path: Path) -> None:
    config = _config(tmp_path, {"avisos": 'kind = "console"\n[options]\nlanguage = 5\n'})
    (problem,) = validate_templates(config)
    assert problem.file.endswith("avisos.toml")
    assert (problem.key, problem.message) == ("options.language", "must be str, not int")
