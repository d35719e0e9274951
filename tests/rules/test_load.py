"""Check-time errors: every problem in the rules, with its file and key, found at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertcast.config import DATABASE_URL_ENV, load_config
from alertcast.errors import ConfigError
from tests.rules.support import REPO_ROOT, rules


def problems(text: str, **kwargs: object) -> dict[str, str]:
    """key → message of every problem in the rules file ``text``."""
    with pytest.raises(ConfigError) as caught:
        rules(text, **kwargs)  # type: ignore[arg-type]
    found: dict[str, str] = {}
    for problem in caught.value.problems:
        assert problem.file in ("rules.toml", "channels/sms.toml"), problem
        found[problem.key] = (found.get(problem.key, "") + " | " + problem.message).strip(" |")
    return found


@pytest.mark.parametrize(
    ("route", "key", "message"),
    [
        ('severty_at_least = "Severe"', "severty_at_least", "did you mean 'severity_at_least'"),
        ('event = "re:sismo(("', "event", "invalid regular expression"),
        (
            'channels = ["telegarm"]',
            "channels",
            "unknown channel 'telegarm'; did you mean 'telegram'",
        ),
        ('status = "Excercise"', "status", "did you mean 'Exercise'"),
        ('severity_at_least = "High"', "severity_at_least", "one of: Extreme, Severe"),
        ("urgency_at_least = 3", "urgency_at_least", "must be a string"),
        ('category = ["Weather"]', "category", "unknown value 'Weather'"),
        ("msg_type = []", "msg_type", "must not be empty"),
        ('area = "cdnx"', "area", "unknown area 'cdnx'"),
        ('language = "Spanish (Mexico)"', "language", "not a language tag"),
        ('geocode = { prefix = "09" }', "geocode.scheme", "is required"),
        ('geocode = { scheme = "INEGI_CVEGEO", prefix = [] }', "geocode.prefix", "at least one"),
        ('audience = "everyone"', "audience", 'must be "channel-post" or a table'),
        ('audience = { areas = ["alert"] }', "audience.topics", "is required"),
        ('audience = { topics = ["Sismos Fuertes"] }', "audience.topics", "not a topic name"),
        ('audience = { topics = ["x"], areas = ["moon"] }', "audience.areas", "unknown area"),
        ('approval = "three"', "approval", "one of: auto, one, two"),
        ('priority = "high"', "priority", "must be an integer"),
        ('template = "Earth Quake"', "template", "template name"),
        ('continue = "yes"', "continue", "true or false"),
        ('group_by = ["road"]', "group_by", "unknown label 'road'"),
        ("group_window_s = 600", "group_window_s", "needs group_by"),
        ('group_by = ["feed"]\ngroup_window_s = 0', "group_window_s", "above 0"),
        ('name = "two words"', "name", "no spaces"),
        ('routes = "none"', "routes", "list of tables"),
    ],
)
def test_a_bad_route_key_is_named_with_its_file_and_key(route: str, key: str, message: str) -> None:
    area = "[areas.cdmx]\ncircle = { lat = 19.4, lon = -99.1, radius_km = 20 }\n"
    text = f"{area}[route]\n[[route.routes]]\n{route}\n"
    found = problems(text)
    assert message in found[f"route.routes[0].{key}"]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        """
colour = "red"
[route]
channels = ["nope"]
[[route.routes]]
event = "re:("
[[route.routes]]
severity_at_least = "Huge"
"""
    )
    assert set(found) == {
        "colour",
        "route.channels",
        "route.routes[0].event",
        "route.routes[1].severity_at_least",
    }


def test_the_root_matches_everything_and_continues_nowhere() -> None:
    found = problems('[route]\ncategory = "Geo"\ncontinue = true\n')
    assert "put matchers on a [[route.routes]] child" in found["route.category"]
    assert "no siblings" in found["route.continue"]


def test_route_names_are_unique() -> None:
    found = problems('[route]\n[[route.routes]]\nname = "a"\n[[route.routes]]\nname = "a"\n')
    assert "already used by route.routes[0]" in found["route.routes[1].name"]


def test_feed_names_are_checked_when_known() -> None:
    found = problems(
        '[route]\n[[route.routes]]\nfeeds = ["capufe-carretera", "smn-*"]\n',
        feeds=("capufe-carreteras",),
    )
    assert (
        "unknown feed 'capufe-carretera'; did you mean 'capufe-carreteras'"
        in found["route.routes[0].feeds"]
    )


# The exercise wall, at check time -------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "key", "message"),
    [
        ('exercise = true\nchannels = ["sms"]', "test_audience", "is required on exercise routes"),
        (
            'exercise = true\nchannels = ["sms"]\ntest_audience = { topics = ["simulacros"] }\n'
            'audience = { topics = ["avisos"] }',
            "audience",
            "reach only their test_audience",
        ),
        (
            'exercise = true\nstatus = ["Actual", "Exercise"]',
            "status",
            "never follows Actual alerts",
        ),
        (
            'exercise = true\npriority = 50\nchannels = ["sms"]\n'
            'test_audience = { topics = ["s"] }',
            "priority",
            "never overtakes a real alert",
        ),
        ('test_audience = { topics = ["s"] }', "test_audience", "only exercise routes"),
        (
            'status = ["Exercise"]\nchannels = ["sms"]',
            "status",
            "only follow routes marked exercise",
        ),
        (
            'exercise = true\nchannels = ["sms"]\ntest_audience = "channel-post"',
            "test_audience",
            "would be seen by its public followers",
        ),
        ('channels = ["drill-group"]', "channels", "real alerts never go to it"),
    ],
)
def test_no_configuration_lets_a_drill_reach_the_public(route: str, key: str, message: str) -> None:
    found = problems(f"[route]\n[[route.routes]]\n{route}\n")
    assert message in found[f"route.routes[0].{key}"]


def test_a_child_of_an_exercise_route_cannot_opt_out() -> None:
    found = problems(
        """
[route]
[[route.routes]]
exercise = true
[[route.routes.routes]]
exercise = false
"""
    )
    assert "is an exercise route too" in found["route.routes[0].routes[0].exercise"]


def test_a_drill_topic_cannot_also_be_a_public_topic() -> None:
    found = problems(
        """
[route]
channels = ["sms"]
[[route.routes]]
audience = { topics = ["sismos"] }
[[route.routes]]
exercise = true
test_audience = { topics = ["sismos"] }
"""
    )
    assert "a group of its own" in found["route.routes[1].test_audience.topics"]


# Areas, inhibit rules, channel options ----------------------------------------------------


@pytest.mark.parametrize(
    ("area", "key", "message"),
    [
        ("polygon = [[19.0, -99.0], [19.1, -99.0]]", "areas.a.polygon", "at least 3 distinct"),
        (
            "polygon = [[91.0, -99.0], [19.1, -99.0], [19.1, -98.0]]",
            "areas.a.polygon[0]",
            "degrees",
        ),
        ('polygon = "19,-99 20,-99"', "areas.a.polygon", "list of [lat, lon]"),
        (
            "circle = { lat = 19.0, lon = -99.0, radius_km = -5 }",
            "areas.a.circle.radius_km",
            "above 0",
        ),
        ("circle = { lat = 19.0, lon = -99.0 }", "areas.a.circle.radius_km", "is required"),
        ('description = "nothing"', "areas.a", "needs a polygon or a circle"),
        ("polygons = []", "areas.a.polygons", "did you mean 'polygon'"),
    ],
)
def test_bad_named_areas(area: str, key: str, message: str) -> None:
    found = problems(f"[areas.a]\n{area}\n")
    assert message in found[key].replace("greater than 0", "above 0")


@pytest.mark.parametrize(
    ("rule", "key", "message"),
    [
        ('source = { severity_at_least = "Severe" }', "inhibit[0].target", "is required"),
        ('source = {}\ntarget = { event = "*" }', "inhibit[0].source", "match every alert"),
        (
            'source = { event = "*" }\ntarget = { event = "*" }\nequal = ["road"]',
            "inhibit[0].equal",
            "unknown label 'road'",
        ),
        (
            'source = { severity = "Severe" }\ntarget = { event = "*" }',
            "inhibit[0].source.severity",
            "did you mean 'severity_at_least'",
        ),
    ],
)
def test_bad_inhibit_rules(rule: str, key: str, message: str) -> None:
    found = problems(f"[[inhibit]]\n{rule}\n")
    assert message in found[key]


@pytest.mark.parametrize(
    ("quiet", "key", "message"),
    [
        (
            '{ start = "10pm", end = "07:00", timezone = "UTC" }',
            "options.quiet_hours.start",
            "24-hour",
        ),
        ('{ start = "22:00", end = "07:00" }', "options.quiet_hours.timezone", "is required"),
        (
            '{ start = "22:00", end = "07:00", timezone = "America/Mexico_Cty" }',
            "options.quiet_hours.timezone",
            "unknown time zone",
        ),
        (
            '{ start = "22:00", end = "22:00", timezone = "UTC" }',
            "options.quiet_hours",
            "the same time",
        ),
        (
            '{ start = "22:00", end = "07:00", timezone = "UTC", days = "weekdays" }',
            "options.quiet_hours.days",
            "unknown key",
        ),
        ('"22-07"', "options.quiet_hours", "must be a table"),
    ],
)
def test_bad_quiet_hours_are_named_in_the_channel_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: str, key: str, message: str
) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "sms.toml").write_text(
        f'kind = "console"\n[options]\nquiet_hours = {quiet}\n', encoding="utf-8"
    )
    config = tmp_path / "alertcast.toml"
    config.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    (problem,) = caught.value.problems
    assert problem.file == str(tmp_path / "channels" / "sms.toml")
    assert problem.key == key and message in problem.message


# Through the configuration ------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "console.toml").write_text('kind = "console"\n', encoding="utf-8")
    (tmp_path / "alertcast.toml").write_text("", encoding="utf-8")
    return tmp_path


def test_rules_beside_the_configuration_are_loaded(folder: Path) -> None:
    (folder / "rules.toml").write_text(
        '[route]\nchannels = ["console"]\n[[route.routes]]\nname = "geo"\ncategory = "Geo"\n',
        encoding="utf-8",
    )
    config = load_config(folder / "alertcast.toml")
    assert config.rules_file == folder / "rules.toml"
    assert [r.name for r in config.routes.routes] == ["root", "geo"]


def test_without_a_rules_file_nothing_is_routed(folder: Path) -> None:
    config = load_config(folder / "alertcast.toml")
    assert config.rules_file is None
    assert [r.name for r in config.routes.routes] == ["root"]
    assert config.routes.root.channels == ()


def test_a_rules_file_elsewhere_and_a_missing_one(folder: Path) -> None:
    (folder / "routing").mkdir()
    (folder / "routing" / "main.toml").write_text(
        '[route]\nchannels = ["console"]\n', encoding="utf-8"
    )
    (folder / "alertcast.toml").write_text(
        '[paths]\nrules = "routing/main.toml"\n', encoding="utf-8"
    )
    assert load_config(folder / "alertcast.toml").routes.root.channels == ("console",)
    (folder / "alertcast.toml").write_text(
        '[paths]\nrules = "routing/missing.toml"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(folder / "alertcast.toml")
    (problem,) = caught.value.problems
    assert (Path(problem.file).name, problem.key) == ("alertcast.toml", "paths.rules")


def test_rules_problems_name_the_rules_file(folder: Path) -> None:
    (folder / "rules.toml").write_text(
        '[route]\nchannels = ["console", "sms"]\n[[route.routes]]\nevent = "re:[unclosed"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(folder / "alertcast.toml")
    found = {(Path(p.file).name, p.key): p.message for p in caught.value.problems}
    assert "unknown channel 'sms'" in found[("rules.toml", "route.channels")]
    assert "invalid regular expression" in found[("rules.toml", "route.routes[0].event")]


def test_an_unreadable_rules_file_is_a_problem_of_that_file(folder: Path) -> None:
    (folder / "rules.toml").write_text("[route\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(folder / "alertcast.toml")
    (problem,) = caught.value.problems
    assert Path(problem.file).name == "rules.toml" and "not valid TOML" in problem.message


def test_the_shipped_rules_are_valid_and_keep_drills_apart() -> None:
    config = load_config(REPO_ROOT / "alertcast.toml")
    assert config.rules_file == REPO_ROOT / "rules.toml"
    routes = {r.name: r for r in config.routes.routes}
    assert routes["drills"].exercise and routes["drills"].audience.test
    assert not any(r.audience.test for r in routes.values() if not r.exercise)
    assert config.routes.inhibit and "cdmx" in config.routes.areas
