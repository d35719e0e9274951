"""``alertcast render``: show exactly what a channel will carry, before anything is sent.

    alertcast render ALERT_FILE --channel CHANNEL [--lang es] [--template NAME] [--json]

``--channel`` is the name of a channel in the configuration (its kind,
options and template overrides apply) or a channel kind (``sms``,
``telegram``, ``x``...; the kind's defaults apply). Without ``--json`` the
text of every part is printed, followed by a line with its length (and SMS
encoding and segments); warnings go to standard error. With ``--json`` one
object per alert is printed: ``{"channel", "language", "parts": [{"text",
"length", "encoding", "segments"}], "truncated", "warnings", ...}``.

Exit codes: 0 when every alert rendered, 1 when the file could not be read
or an alert could not be rendered (``error: PATH: reason`` on standard
error), 2 for an unknown channel or a broken configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alertcast.errors import AlertcastError, CapError, ConfigError

if TYPE_CHECKING:
    from alertcast.config import ChannelConfig, Config
    from alertcast.render import Rendering

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2
DEFAULT_MAX_BYTES = 5 * 1024 * 1024


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``render`` to the ``alertcast`` command."""
    parser = sub.add_parser(
        "render",
        help="show what a channel will carry for a CAP file (nothing is sent)",
        description="Render a CAP alert for one channel and show every part, its length and"
        " what had to be cut. Nothing is sent.",
    )
    parser.add_argument("alert_file", type=Path, metavar="ALERT_FILE")
    parser.add_argument(
        "--channel",
        required=True,
        metavar="CHANNEL",
        help="a channel name from the configuration, or a channel kind (sms, telegram, x...)",
    )
    parser.add_argument("--lang", metavar="LANG", help="the audience's language (e.g. es, en-US)")
    parser.add_argument("--template", metavar="NAME", help="use this template instead")
    parser.add_argument("--json", action="store_true", help="print JSON, one object per alert")
    parser.add_argument(
        "--session-open",
        action="store_true",
        help="WhatsApp: the 24-hour conversation window is open (free text, not a template)",
    )
    parser.add_argument("--config", type=Path, help="alertcast.toml (default: ./alertcast.toml)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``render`` command; returns the exit code."""
    from alertcast.channel_profiles import CHANNEL_KINDS

    try:
        config = _load_config(args.config, args.channel)
    except ConfigError as exc:
        _err(f"{len(exc.problems)} configuration problem(s):")
        for problem in exc.problems:
            _err(f"  {problem}")
        return EXIT_USAGE
    channel = _find_channel(config, args.channel)
    if channel is None and args.channel not in CHANNEL_KINDS:
        names = sorted(c.name for c in config.channels) if config else []
        known = ", ".join([*names, *CHANNEL_KINDS])
        _err(f"error: unknown channel {args.channel!r}; choose one of: {known}")
        return EXIT_USAGE
    max_bytes = config.cap.max_bytes if config is not None else DEFAULT_MAX_BYTES
    path: Path = args.alert_file
    try:
        alerts = _read_alerts(path, max_bytes)
    except (OSError, CapError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _err(f"error: {path}: {reason}")
        return EXIT_BAD_INPUT
    return _render_all(args, path, alerts, channel, config)


def _render_all(
    args: argparse.Namespace,
    path: Path,
    alerts: list[Any],
    channel: ChannelConfig | None,
    config: Config | None,
) -> int:
    from alertcast.render import render

    templates = config.templates_dir if config is not None else None
    failed = False
    for number, alert in enumerate(alerts, start=1):
        try:
            rendering = render(
                alert,
                channel if channel is not None else args.channel,
                language=args.lang,
                template=args.template,
                templates=templates,
                session_open=args.session_open,
            )
        except (AlertcastError, ValueError) as exc:
            where = f"{path} (alert {number})" if len(alerts) > 1 else str(path)
            _err(f"error: {where}: {exc}")
            failed = True
            continue
        if args.json:
            sys.stdout.write(json.dumps(rendering.to_json(), ensure_ascii=False) + "\n")
        else:
            _print_plain(rendering, sys.stdout, len(alerts) > 1 and number > 1)
        for warning in rendering.warnings if not args.json else ():
            _err(f"warning: {warning}")
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")


def _load_config(explicit: Path | None, channel: str) -> Config | None:
    """The configuration when there is one; a bare kind works without it."""
    from alertcast.channel_profiles import CHANNEL_KINDS
    from alertcast.config import find_config, load_config

    file = find_config(explicit)
    if file is None:
        return None
    try:
        return load_config(file)
    except ConfigError:
        if explicit is None and channel in CHANNEL_KINDS:
            # A preview of a bare kind needs nothing from a configuration that is
            # broken for other reasons (a secret not set on this machine).
            _err(
                f"warning: {file} has problems (see `alertcast check`); rendering with the"
                f" defaults of {channel!r}"
            )
            return None
        raise


def _find_channel(config: Config | None, name: str) -> ChannelConfig | None:
    if config is None:
        return None
    return next((c for c in config.channels if c.name == name), None)


def _read_alerts(path: Path, max_bytes: int) -> list[Any]:
    from alertcast.cap import parse_cap_all

    if path.is_dir():
        raise OSError(21, "is a directory")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CapError(f"document is larger than the limit of {max_bytes} bytes", "/")
    return [parsed.alert for parsed in parse_cap_all(data, max_bytes=max_bytes)]


def _print_plain(rendering: Rendering, out: TextIO, separate: bool) -> None:
    if separate:
        out.write("\n")
    if rendering.subject is not None:
        out.write(f"Subject: {rendering.subject}\n\n")
    count = len(rendering.parts)
    for number, part in enumerate(rendering.parts, start=1):
        out.write(part.text + "\n")
        if part.encoding is not None:
            unit = "septets" if part.encoding == "gsm7" else "UTF-16 units"
            details = [
                f"{part.length} {unit}",
                part.encoding,
                f"{part.segments}/{rendering.limit} segment(s)",
            ]
        else:
            details = [f"{part.length}" + (f"/{rendering.limit}" if rendering.limit else "")]
        label = f"part {number}/{count}" if count > 1 else rendering.kind
        out.write(f"--- {label}: {', '.join(details)}, language {rendering.language}\n")
    if rendering.whatsapp_template is not None:
        template = rendering.whatsapp_template
        out.write(f"--- WhatsApp template {template.name} ({template.language})\n")
