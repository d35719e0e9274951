"""Configuration: ``alertcast.toml`` plus the ``feeds/`` and ``channels/`` catalogues.

Configuration fails fast and all at once: every problem is collected with its
file and key, so an operator fixes the whole file in one pass instead of one
error per restart. Secrets never live in these files; a channel names the
environment variable that holds each secret, and only the name is ever shown.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from alertcast.errors import ConfigError, ConfigProblem
from alertcast.log import LogFormat
from alertcast.rules_load import parse_rules
from alertcast.rules_model import RouteTree
from alertcast.timezones import UnknownTimeZone, zone

DATABASE_URL_ENV = "ALERTCAST_DATABASE_URL"
CONFIG_ENV = "ALERTCAST_CONFIG"
DEFAULT_CONFIG_NAME = "alertcast.toml"
DEFAULT_RULES_NAME = "rules.toml"
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

FEED_KINDS: dict[str, frozenset[str]] = {
    # kind → keys it requires besides the common ones
    "cap-dir": frozenset({"path"}),
    "cap": frozenset({"url"}),
    "cap-index": frozenset({"url"}),
    "rss": frozenset({"url"}),
    "road-text": frozenset({"url"}),
    "open511": frozenset({"url"}),
    "push": frozenset(),
}
"""Feed kinds this version can watch.

``cap-dir`` watches a drop folder for CAP files; ``push`` receives documents
posted to the web API (it needs ``[secrets] token``); every other kind is
fetched from its ``url`` by the poller.
"""

FETCHED_KINDS: frozenset[str] = frozenset({"cap", "cap-index", "rss", "road-text", "open511"})
"""Kinds the poller fetches over HTTP(S)."""

CAP_CATEGORIES: frozenset[str] = frozenset(
    {
        "Geo",
        "Met",
        "Safety",
        "Security",
        "Rescue",
        "Fire",
        "Health",
        "Env",
        "Transport",
        "Infra",
        "CBRNE",
        "Other",
    }
)
"""The CAP 1.2 ``<category>`` vocabulary, for ``mapping.category``."""

DEFAULT_SENDER = "alertcast@localhost"
"""CAP sender of composed alerts when ``[service] sender`` is not set."""
_SENDER = re.compile(r"^[^\s,&<>\"']{1,200}$")
"""A CAP sender: no whitespace, no comma (it is part of ``sender,identifier,sent``)."""

DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_JITTER = 0.1
DEFAULT_MAX_BACKOFF_S = 1800.0
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$|^\[[0-9a-f:.]+\]$")

CHANNEL_KINDS: frozenset[str] = frozenset(
    {
        "apprise",
        "bluesky",
        "cap",
        "console",
        "email",
        "facebook",
        "file",
        "mastodon",
        "sms",
        "telegram",
        "webhook",
        "whatsapp",
        "x",
    }
)
"""Channel kinds this version can speak on."""


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    log_level: str = "info"
    log_format: LogFormat = "auto"
    public_url: str | None = None
    """How the public reaches this service (``https://alertas.example.gob.mx``): the base of
    links in messages, of the CAP feed and of signed provider callbacks. None: the bound address."""
    sender: str = DEFAULT_SENDER
    """The CAP ``sender`` of the alerts officers compose here (``alertas@example.gob.mx``)."""
    tile_url: str | None = None
    """The console map's tile template (``https://tiles.example.org/{z}/{x}/{y}.png``, or a path on
    this site). None: the map draws the areas' outlines only, which works on an offline network."""


@dataclass(frozen=True, slots=True)
class CapSettings:
    max_bytes: int = 5 * 1024 * 1024
    strict: bool = False


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One watched source (a file in ``feeds/``)."""

    name: str
    kind: str
    file: Path
    enabled: bool = True
    url: str | None = None
    path: Path | None = None
    interval_s: float = 60.0
    timeout_s: float = 20.0
    max_bytes: int = 5 * 1024 * 1024
    headers: Mapping[str, str] = field(default_factory=dict)
    mapping: Mapping[str, Any] = field(default_factory=dict)
    allowed_hosts: tuple[str, ...] = ()
    """Hosts besides the feed URL's own that linked documents and redirects may lead to
    (``"alerts.example.org"``, or ``"*.example.org"`` for a whole domain)."""
    stale_after_s: float | None = None
    """No change for longer than this marks the feed stale; None means three intervals."""
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    """Consecutive failed polls after which operators are warned."""
    jitter: float = DEFAULT_JITTER
    """Each wait is spread by ± this fraction, so that feeds do not poll in lockstep."""
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S
    """The longest wait between two attempts while a feed keeps failing."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Role → name of the environment variable holding the secret (never the secret)."""

    def secret(self, role: str) -> str | None:
        """The secret's value, read from the environment at the moment it is needed."""
        env_name = self.secrets.get(role)
        return os.environ.get(env_name) if env_name else None

    @property
    def fetched(self) -> bool:
        """True for the kinds the poller fetches over HTTP(S)."""
        return self.kind in FETCHED_KINDS


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One outbound channel (a file in ``channels/``). ``secrets`` maps a role to an env name."""

    name: str
    kind: str
    file: Path
    enabled: bool = True
    secrets: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def secret(self, role: str) -> str | None:
        """The secret's value, read from the environment at the moment it is needed."""
        env_name = self.secrets.get(role)
        return os.environ.get(env_name) if env_name else None


@dataclass(frozen=True, slots=True)
class Config:
    """Everything alertcast was told, validated."""

    root: Path
    file: Path | None
    service: ServiceSettings
    database_url: str
    cap: CapSettings
    feeds: tuple[FeedConfig, ...]
    channels: tuple[ChannelConfig, ...]
    feeds_dir: Path
    channels_dir: Path
    rules_file: Path | None = None
    routes: RouteTree = field(default_factory=RouteTree.empty)
    """The routing rules (``rules.toml``); with no rules file, a root that sends nowhere."""

    @property
    def templates_dir(self) -> Path:
        return self.channels_dir / "templates"


class _Problems:
    """Collects problems; typed readers that record a problem instead of raising."""

    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, file: Path | str, key: str, message: str) -> None:
        self.items.append(ConfigProblem(str(file), key, message))

    def unknown_keys(
        self, file: Path, prefix: str, table: Mapping[str, Any], allowed: frozenset[str]
    ) -> None:
        for key in table:
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                suffix = f"; did you mean '{hint[0]}'?" if hint else ""
                self.add(file, f"{prefix}{key}", f"unknown key{suffix}")

    def get(
        self,
        file: Path,
        table: Mapping[str, Any],
        key: str,
        kind: type[Any] | tuple[type[Any], ...],
        default: Any,
        prefix: str = "",
    ) -> Any:
        if key not in table:
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a TOML `true` must not pass for a number.
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            self.add(file, prefix + key, f"must be {names}, not {type(value).__name__}")
            return default
        return value

    def keys_of(self, file: Path | str) -> set[str]:
        """The keys of ``file`` that already have a problem (to avoid reporting one twice)."""
        return {p.key for p in self.items if p.file == str(file)}

    def positive(
        self, file: Path, table: Mapping[str, Any], key: str, default: float, prefix: str = ""
    ) -> float:
        value = self.get(file, table, key, (int, float), default, prefix)
        if value <= 0:
            self.add(file, prefix + key, f"must be greater than 0, not {value}")
            return default
        return float(value)

    def table(
        self, file: Path, parent: Mapping[str, Any], key: str, prefix: str = ""
    ) -> dict[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            self.add(file, prefix + key, "must be a table")
            return {}
        return cast(dict[str, Any], value)


def _read_toml(file: Path, problems: _Problems) -> dict[str, Any] | None:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        problems.add(file, "", f"cannot be read: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        problems.add(file, "", f"is not valid TOML: {exc}")
    return None


def find_config(explicit: Path | None = None) -> Path | None:
    """The configuration file: the one given, else ``$ALERTCAST_CONFIG``, else ./alertcast.toml."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


_TOP_KEYS = frozenset({"service", "database", "cap", "paths"})
_SERVICE_KEYS = frozenset(
    {"host", "port", "data_dir", "log_level", "log_format", "public_url", "sender", "tile_url"}
)
_DATABASE_KEYS = frozenset({"url"})
_CAP_KEYS = frozenset({"max_bytes", "strict"})
_PATHS_KEYS = frozenset({"feeds", "channels", "rules"})
_FEED_KEYS = frozenset(
    {
        "name",
        "kind",
        "enabled",
        "url",
        "path",
        "interval_s",
        "timeout_s",
        "max_bytes",
        "headers",
        "mapping",
        "description",
        "allowed_hosts",
        "stale_after_s",
        "failure_threshold",
        "jitter",
        "max_backoff_s",
        "secrets",
    }
)
_CHANNEL_KEYS = frozenset({"name", "kind", "enabled", "secrets", "options", "description"})


def load_config(path: Path | None = None) -> Config:
    """Read and validate the configuration; raise ``ConfigError`` listing every problem.

    With no file at all, the embedded defaults apply (SQLite under ``./data``,
    no feeds, no channels), so ``alertcast serve`` works in an empty folder.
    """
    problems = _Problems()
    file = find_config(path)
    raw: dict[str, Any] = {}
    if file is not None:
        if not file.is_file():
            raise ConfigError([ConfigProblem(str(file), "", "no such configuration file")])
        raw = _read_toml(file, problems) or {}
    root = (file.parent if file is not None else Path.cwd()).resolve()
    where: Path = file if file is not None else Path(DEFAULT_CONFIG_NAME)
    problems.unknown_keys(where, "", raw, _TOP_KEYS)

    service_t = problems.table(where, raw, "service")
    problems.unknown_keys(where, "service.", service_t, _SERVICE_KEYS)
    port = problems.get(where, service_t, "port", int, 8080, "service.")
    if not 0 <= port <= 65535:
        problems.add(where, "service.port", f"must be between 0 and 65535, not {port}")
        port = 8080
    log_format = problems.get(where, service_t, "log_format", str, "auto", "service.")
    if log_format not in ("auto", "console", "json"):
        problems.add(where, "service.log_format", "must be one of auto, console, json")
        log_format = "auto"
    log_level = problems.get(where, service_t, "log_level", str, "info", "service.")
    if log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        problems.add(where, "service.log_level", "must be debug, info, warning, error or critical")
        log_level = "info"
    data_dir = root / problems.get(where, service_t, "data_dir", str, "data", "service.")
    public_url = problems.get(where, service_t, "public_url", str, None, "service.")
    if public_url is not None and not re.match(r"^https?://[^/]+", public_url):
        problems.add(where, "service.public_url", "must be an http:// or https:// URL")
        public_url = None
    sender = problems.get(where, service_t, "sender", str, DEFAULT_SENDER, "service.")
    if not _SENDER.match(sender):
        problems.add(
            where,
            "service.sender",
            "must be a CAP sender such as alertas@example.gob.mx: no spaces, commas, quotes or <>&",
        )
        sender = DEFAULT_SENDER
    tile_url = problems.get(where, service_t, "tile_url", str, None, "service.")
    if tile_url is not None and not (
        re.match(r"^(https?://[^/\s]+)?/[^\s\"'<>]*$", tile_url)
        and all(part in tile_url for part in ("{z}", "{x}", "{y}"))
    ):
        problems.add(
            where,
            "service.tile_url",
            "must be an http(s) URL or a path with {z}, {x} and {y}, "
            "e.g. https://tiles.example.org/{z}/{x}/{y}.png",
        )
        tile_url = None
    service = ServiceSettings(
        host=problems.get(where, service_t, "host", str, "127.0.0.1", "service."),
        port=port,
        data_dir=data_dir,
        log_level=log_level.lower(),
        log_format=cast(LogFormat, log_format),
        public_url=public_url.rstrip("/") if public_url else None,
        sender=sender,
        tile_url=tile_url or None,
    )

    database_t = problems.table(where, raw, "database")
    problems.unknown_keys(where, "database.", database_t, _DATABASE_KEYS)
    configured_url = problems.get(where, database_t, "url", str, None, "database.")
    database_url = (
        os.environ.get(DATABASE_URL_ENV)
        or configured_url
        or f"sqlite:///{data_dir / 'alertcast.db'}"
    )
    if configured_url and urlsplit(configured_url).password:
        problems.add(
            where,
            "database.url",
            f"contains a password; put the URL in ${DATABASE_URL_ENV} instead",
        )

    cap_t = problems.table(where, raw, "cap")
    problems.unknown_keys(where, "cap.", cap_t, _CAP_KEYS)
    cap = CapSettings(
        max_bytes=int(problems.positive(where, cap_t, "max_bytes", 5 * 1024 * 1024, "cap.")),
        strict=problems.get(where, cap_t, "strict", bool, False, "cap."),
    )

    paths_t = problems.table(where, raw, "paths")
    problems.unknown_keys(where, "paths.", paths_t, _PATHS_KEYS)
    feeds_dir = root / problems.get(where, paths_t, "feeds", str, "feeds", "paths.")
    channels_dir = root / problems.get(where, paths_t, "channels", str, "channels", "paths.")

    rules_value = problems.get(where, paths_t, "rules", str, None, "paths.")

    feeds = _load_feeds(feeds_dir, problems)
    channels = _load_channels(channels_dir, problems)
    rules_file = root / (rules_value or DEFAULT_RULES_NAME)
    routes = _load_rules(rules_file, rules_value is not None, where, feeds, channels, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return Config(
        root=root,
        file=file,
        service=service,
        database_url=database_url,
        cap=cap,
        feeds=feeds,
        channels=channels,
        feeds_dir=feeds_dir,
        channels_dir=channels_dir,
        rules_file=rules_file if rules_file.is_file() else None,
        routes=routes,
    )


def _load_rules(
    file: Path,
    explicit: bool,
    where: Path,
    feeds: tuple[FeedConfig, ...],
    channels: tuple[ChannelConfig, ...],
    problems: _Problems,
) -> RouteTree:
    """The routing rules; without a rules file (and none asked for), a tree that sends nowhere.

    The channels' routing options (quiet hours, test-only) are checked either way.
    """
    data: dict[str, Any] = {}
    if not file.is_file():
        if explicit:
            problems.add(where, "paths.rules", f"no such rules file: {file}")
    else:
        data = _read_toml(file, problems) or {}
    tree, found = parse_rules(data, file, channels=channels, feeds=[f.name for f in feeds])
    problems.items.extend(found)
    return tree


def _catalogue(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def _check_name(file: Path, name: Any, problems: _Problems, seen: dict[str, Path]) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        problems.add(file, "name", "must be lowercase letters, digits, '-', '_' or '.'")
        return file.stem
    if name in seen:
        problems.add(file, "name", f"'{name}' is already used by {seen[name]}")
    seen[name] = file
    return name


def _load_feeds(folder: Path, problems: _Problems) -> tuple[FeedConfig, ...]:
    feeds: list[FeedConfig] = []
    seen: dict[str, Path] = {}
    for file in _catalogue(folder):
        data = _read_toml(file, problems)
        if data is None:
            continue
        problems.unknown_keys(file, "", data, _FEED_KEYS)
        name = _check_name(file, data.get("name", file.stem), problems, seen)
        kind = problems.get(file, data, "kind", str, "", "")
        enabled = problems.get(file, data, "enabled", bool, True)
        if not kind:
            problems.add(file, "kind", "is required")
        elif kind not in FEED_KINDS:
            known = ", ".join(sorted(FEED_KINDS))
            if enabled:
                problems.add(file, "kind", f"'{kind}' is not a feed kind of this version ({known})")
        else:
            for required in sorted(FEED_KINDS[kind]):
                if required not in data:
                    problems.add(file, required, f"is required for kind '{kind}'")
        url = problems.get(file, data, "url", str, None)
        if url is not None and not re.match(r"^(https?|file)://", url):
            problems.add(file, "url", "must start with http://, https:// or file://")
        elif url is not None and kind in FETCHED_KINDS and not re.match(r"^https?://[^/]", url):
            problems.add(file, "url", f"must be an http:// or https:// URL for kind '{kind}'")
        path_value = problems.get(file, data, "path", str, None)
        headers = problems.table(file, data, "headers")
        for key, value in headers.items():
            if not isinstance(value, str):
                problems.add(file, f"headers.{key}", "must be a string")
        mapping = problems.table(file, data, "mapping")
        _check_mapping(file, mapping, problems)
        secrets = _read_secrets(file, data, problems, enabled=enabled)
        if (
            kind == "push"
            and "token" not in secrets
            and "secrets.token" not in problems.keys_of(file)
        ):
            problems.add(
                file,
                "secrets.token",
                "is required for kind 'push': name the environment variable holding the token"
                " that senders must present",
            )
        interval_s = problems.positive(file, data, "interval_s", 60.0)
        stale_after = (
            problems.positive(file, data, "stale_after_s", 1.0) if "stale_after_s" in data else None
        )
        threshold = problems.get(file, data, "failure_threshold", int, DEFAULT_FAILURE_THRESHOLD)
        if threshold < 1:
            problems.add(file, "failure_threshold", f"must be at least 1, not {threshold}")
            threshold = DEFAULT_FAILURE_THRESHOLD
        jitter = float(problems.get(file, data, "jitter", (int, float), DEFAULT_JITTER))
        if not 0 <= jitter < 1:
            problems.add(file, "jitter", f"must be a fraction from 0 to below 1, not {jitter}")
            jitter = DEFAULT_JITTER
        feeds.append(
            FeedConfig(
                name=name,
                kind=kind,
                file=file,
                enabled=enabled,
                url=url,
                path=(file.parent.parent / path_value) if path_value else None,
                interval_s=interval_s,
                timeout_s=problems.positive(file, data, "timeout_s", 20.0),
                max_bytes=int(problems.positive(file, data, "max_bytes", 5 * 1024 * 1024)),
                headers={k: str(v) for k, v in headers.items()},
                mapping=mapping,
                allowed_hosts=_read_hosts(file, data, problems),
                stale_after_s=stale_after,
                failure_threshold=threshold,
                jitter=jitter,
                max_backoff_s=problems.positive(file, data, "max_backoff_s", DEFAULT_MAX_BACKOFF_S),
                secrets=secrets,
            )
        )
    return tuple(feeds)


def _read_hosts(file: Path, data: Mapping[str, Any], problems: _Problems) -> tuple[str, ...]:
    value = data.get("allowed_hosts", [])
    if not isinstance(value, list):
        problems.add(file, "allowed_hosts", "must be a list of host names")
        return ()
    hosts: list[str] = []
    for number, host in enumerate(value):
        if not isinstance(host, str) or not _HOST_PATTERN.match(host.lower()):
            problems.add(
                file,
                f"allowed_hosts[{number}]",
                "must be a host name such as 'alerts.example.org' or '*.example.org'"
                " (no scheme, port or path)",
            )
            continue
        hosts.append(host.lower())
    return tuple(hosts)


def _check_mapping(file: Path, mapping: Mapping[str, Any], problems: _Problems) -> None:
    """Check the mapping keys every kind shares; kinds may read further keys of their own."""
    for key in ("sender", "language", "geocode_scheme", "timezone"):
        if key in mapping and (not isinstance(mapping[key], str) or not mapping[key].strip()):
            problems.add(file, f"mapping.{key}", "must be a non-empty string")
    category = mapping.get("category")
    if category is not None and category not in CAP_CATEGORIES:
        hint = difflib.get_close_matches(str(category), sorted(CAP_CATEGORIES), n=1)
        suffix = f"; did you mean '{hint[0]}'?" if hint else ""
        problems.add(
            file,
            "mapping.category",
            f"'{category}' is not a CAP category ({', '.join(sorted(CAP_CATEGORIES))}){suffix}",
        )
    language = mapping.get("language")
    if isinstance(language, str) and language.strip() and not _LANGUAGE_TAG.match(language):
        problems.add(file, "mapping.language", f"'{language}' is not a language tag like es-MX")
    timezone = mapping.get("timezone")
    if isinstance(timezone, str) and timezone.strip():
        try:
            zone(timezone)
        except UnknownTimeZone:
            problems.add(
                file,
                "mapping.timezone",
                f"'{timezone}' is not a time zone name like America/Mexico_City",
            )
    senders = mapping.get("senders")
    if senders is not None and (
        not isinstance(senders, list) or not all(isinstance(s, str) and s for s in senders)
    ):
        problems.add(file, "mapping.senders", "must be a list of CAP sender names")


def _read_secrets(
    file: Path, data: Mapping[str, Any], problems: _Problems, *, enabled: bool
) -> dict[str, str]:
    """Role → environment variable name; a value that looks like a secret is refused unseen."""
    secrets = problems.table(file, data, "secrets")
    checked: dict[str, str] = {}
    for role, env_name in secrets.items():
        if not isinstance(env_name, str) or not _ENV_NAME.match(env_name):
            # Never echo the value: it may be the secret itself, pasted by mistake.
            problems.add(
                file,
                f"secrets.{role}",
                "must name an environment variable (e.g. TELEGRAM_BOT_TOKEN), "
                "not hold the secret itself",
            )
            continue
        checked[role] = env_name
        if enabled and not os.environ.get(env_name):
            problems.add(file, f"secrets.{role}", f"environment variable {env_name} is not set")
    return checked


def _load_channels(folder: Path, problems: _Problems) -> tuple[ChannelConfig, ...]:
    channels: list[ChannelConfig] = []
    seen: dict[str, Path] = {}
    for file in _catalogue(folder):
        data = _read_toml(file, problems)
        if data is None:
            continue
        problems.unknown_keys(file, "", data, _CHANNEL_KEYS)
        name = _check_name(file, data.get("name", file.stem), problems, seen)
        kind = problems.get(file, data, "kind", str, "")
        enabled = problems.get(file, data, "enabled", bool, True)
        if not kind:
            problems.add(file, "kind", "is required")
        elif kind not in CHANNEL_KINDS and enabled:
            known = ", ".join(sorted(CHANNEL_KINDS))
            problems.add(file, "kind", f"'{kind}' is not a channel kind of this version ({known})")
        checked = _read_secrets(file, data, problems, enabled=enabled)
        channels.append(
            ChannelConfig(
                name=name,
                kind=kind,
                file=file,
                enabled=enabled,
                secrets=checked,
                options=problems.table(file, data, "options"),
            )
        )
    return tuple(channels)
