"""The ``alertcast`` command.

Every subcommand ends with a clear message and an exit code, never a
traceback: 0 when all went well, 1 when some input was bad (the rest was still
done), 2 for a wrong command line or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from alertcast import __version__
from alertcast.config import Config, load_config
from alertcast.errors import AlertcastError, AuditError, ConfigError
from alertcast.i18n import t
from alertcast.progress import Progress

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertcast",
        description="Emergency and public-service alert broadcaster (CAP in, every channel out).",
    )
    parser.add_argument("--version", action="version", version=f"alertcast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "parse", help="parse CAP, CAP index, RSS or road files and print one JSON object per alert"
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--strict", action="store_true", help="treat every warning as an error")
    p.add_argument("--max-bytes", type=int, default=5 * 1024 * 1024, help="size limit per file")
    p.add_argument(
        "--kind",
        choices=("auto", "cap", "cap-index", "rss", "road-text", "open511"),
        default="auto",
        help="feed kind of every file (default: detected from each file's content)",
    )

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="alertcast.toml (default: ./alertcast.toml)")

    p = sub.add_parser("serve", help="run the service")
    with_config(p)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument(
        "--role",
        dest="roles",
        action="append",
        type=_role_value,
        default=[],
        metavar="ROLE",
        help="run only this part: web, worker, poller or bot; repeatable or comma-separated "
        "(--role web,worker); default: all of them",
    )

    p = sub.add_parser("worker", help="run only dispatch: send the ledger's deliveries (scale-out)")
    with_config(p)
    p.add_argument(
        "--plan",
        action="store_true",
        help="also route alerts left unplanned by an interrupted instance",
    )

    p = sub.add_parser("demo", help="run the service on a demo configuration in a fresh folder")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--data-dir", type=Path, help="folder for the demo (default: a new temp dir)")

    p = sub.add_parser("check", help="validate the whole configuration")
    with_config(p)

    p = sub.add_parser("db", help="database maintenance")
    db = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    with_config(db.add_parser("upgrade", help="apply migrations"))

    p = sub.add_parser("audit", help="the tamper-evident audit trail")
    audit_sub = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    with_config(audit_sub.add_parser("verify", help="check every record's hash chain"))
    q = audit_sub.add_parser("export", help="write every record")
    with_config(q)
    q.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    q.add_argument("--output", type=Path, help="file to write (default: standard output)")
    q = audit_sub.add_parser("tail", help="show the latest records")
    with_config(q)
    q.add_argument("-n", type=int, default=20, help="how many (default 20)")
    for register in _extensions():
        register(sub)
    return parser


def _role_value(value: str) -> frozenset[str]:
    """One ``--role`` value, checked as it is read: a wrong one is a usage error (exit 2)."""
    from alertcast.ha.roles import RoleError, parse_roles

    try:
        return parse_roles([value])
    except RoleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _extensions() -> list[Register]:
    """Subcommands that live in their own modules (``alertcast/cli_*.py``).

    Each module has ``register(sub)``, which adds its parsers and sets
    ``func`` (taking the parsed args, returning the exit code) as a default.
    """
    from alertcast import (
        cli_areas,
        cli_channels,
        cli_deliveries,
        cli_feeds,
        cli_officers,
        cli_render,
        cli_rules,
        cli_subscribers,
    )

    return [
        cli_feeds.register,
        cli_render.register,
        cli_rules.register,
        cli_deliveries.register,
        cli_channels.register,
        cli_subscribers.register,
        cli_areas.register,
        cli_officers.register,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from alertcast.log import configure_logging

    # Logs go to stderr from the first line on: stdout carries only the command's output.
    configure_logging("warning", "auto")
    try:
        if getattr(args, "func", None) is not None:
            return int(args.func(args))
        if args.command == "parse":
            return cmd_parse(
                args.paths, strict=args.strict, max_bytes=args.max_bytes, kind=args.kind
            )
        if args.command == "check":
            return cmd_check(args.config)
        if args.command == "demo":
            return cmd_demo(args.port, args.data_dir)
        config = _load(args.config)
        configure_logging(config.service.log_level, config.service.log_format)
        if args.command == "serve":
            from alertcast.app import serve
            from alertcast.ha.roles import ALL_ROLES

            roles: frozenset[str] = frozenset().union(*args.roles) or ALL_ROLES
            asyncio.run(serve(config, roles=roles, host=args.host, port=args.port))
            return EXIT_OK
        if args.command == "worker":
            from alertcast.app import run_worker

            asyncio.run(run_worker(config, plan=args.plan))
            return EXIT_OK
        if args.command == "db":
            return asyncio.run(cmd_db_upgrade(config.database_url))
        if args.command == "audit":
            if args.audit_command == "verify":
                return asyncio.run(cmd_audit_verify(config.database_url))
            if args.audit_command == "export":
                return asyncio.run(cmd_audit_export(config.database_url, args.format, args.output))
            return asyncio.run(cmd_audit_tail(config.database_url, args.n))
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_USAGE
    except AlertcastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return EXIT_USAGE


def _load(path: Path | None) -> Config:
    return load_config(path)


def _print_problems(exc: ConfigError) -> None:
    print(t("check.problems", count=len(exc.problems)), file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def cmd_parse(paths: Sequence[Path], *, strict: bool, max_bytes: int, kind: str = "auto") -> int:
    """Print one JSON line per alert; report unreadable files and entries on stderr and go on.

    Each file's kind is detected from its content unless ``kind`` names one.
    CAP files print exactly as they always did. For the other kinds, every
    alert the feed yields is a JSON line in the same shape (road and Open511
    fields appear under ``parameters``); an index entry that only links to a
    CAP document is a line ``{"source_file", "linked", "entry_id", "updated"}``
    (nothing is fetched); each entry that could not be read is a line
    ``error: PATH: entry N: reason`` on stderr, and document-level remarks
    are ``warning: PATH: remark`` lines. The exit code is 1 when any file or
    entry could not be read.
    """
    from alertcast.errors import CapError, FeedError
    from alertcast.feeds.registry import detect_kind

    failed = False
    out: TextIO = sys.stdout
    with Progress(len(paths), t("progress.parse")) as bar:
        for path in paths:
            try:
                data = _read_limited(path, max_bytes)
                file_kind = detect_kind(data) if kind == "auto" else kind
                if file_kind == "cap":
                    _print_cap_file(path, data, out, strict=strict, max_bytes=max_bytes)
                else:
                    failed |= _parse_feed_file(
                        path, data, out, kind=file_kind, strict=strict, max_bytes=max_bytes
                    )
            except (OSError, CapError, FeedError) as exc:
                if isinstance(exc, OSError):
                    reason = exc.strerror or str(exc)
                elif isinstance(exc, FeedError):
                    reason = exc.reason
                else:
                    reason = str(exc)
                print(t("parse.error", path=path, reason=reason), file=sys.stderr)
                failed = True
            bar.advance()
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _print_cap_file(path: Path, data: bytes, out: TextIO, *, strict: bool, max_bytes: int) -> None:
    """Print the alerts of one CAP document; raise CapError when it cannot be read."""
    from alertcast.alert_json import alert_to_json
    from alertcast.cap import parse_cap_all

    for item in parse_cap_all(data, strict=strict, max_bytes=max_bytes):
        record = alert_to_json(
            item.alert, source_file=str(path), warnings=item.warnings, notices=item.notices
        )
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _parse_feed_file(
    path: Path, data: bytes, out: TextIO, *, kind: str, strict: bool, max_bytes: int
) -> bool:
    """Print what a feed document yields; True when some entry could not be read."""
    from alertcast.alert_json import alert_to_json
    from alertcast.config import FeedConfig
    from alertcast.feeds.registry import parser_for

    parser = parser_for(kind)
    feed = FeedConfig(
        name=path.name, kind=kind, file=path, max_bytes=max_bytes, mapping={"strict": strict}
    )
    batch = parser.parse(data, feed)
    failed = False
    for warning in batch.warnings:
        print(t("parse.warning", path=path, reason=warning), file=sys.stderr)
    for item in batch.items:
        try:
            record = alert_to_json(item.alert, source_file=str(path), warnings=item.warnings)
        except ValueError as exc:
            print(t("parse.error", path=path, reason=exc), file=sys.stderr)
            failed = True
            continue
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    for link in batch.links:
        record_link = {
            "source_file": str(path),
            "linked": link.url,
            "entry_id": link.entry_id,
            "updated": link.updated.isoformat() if link.updated else None,
        }
        out.write(json.dumps(record_link, ensure_ascii=False) + "\n")
    for error in batch.errors:
        print(t("parse.error", path=path, reason=error), file=sys.stderr)
        failed = True
    return failed


def _read_limited(path: Path, max_bytes: int) -> bytes:
    """Read at most one byte past the limit, so a huge file is refused without loading it."""
    from alertcast.errors import CapError

    if path.is_dir():
        raise OSError(21, "is a directory")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CapError(f"document is larger than the limit of {max_bytes} bytes", "/")
    return data


def cmd_check(path: Path | None) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_BAD_INPUT
    from alertcast.dispatch.service import dispatch_problems
    from alertcast.templates import validate_templates

    # Templates are tried now against sample alerts: a broken one fails here, not at send time.
    problems = [*validate_templates(config), *dispatch_problems(config)]
    if problems:
        _print_problems(ConfigError(problems))
        return EXIT_BAD_INPUT
    where = config.file or config.root
    print(t("check.ok", feeds=len(config.feeds), channels=len(config.channels), path=where))
    return EXIT_OK


async def cmd_db_upgrade(url: str) -> int:
    from alertcast.store.engine import redact_url
    from alertcast.store.migrate import upgrade

    revision = await upgrade(url)
    print(t("db.upgraded", revision=revision, url=redact_url(url)))
    return EXIT_OK


async def _engine(url: str) -> AsyncEngine:
    """An engine on a database migrated to the current schema."""
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade

    await upgrade(url)
    return make_engine(url)


async def cmd_audit_verify(url: str) -> int:
    from alertcast import audit

    engine = await _engine(url)
    try:
        total = await audit.count(engine)
        with Progress(total, t("progress.verify")) as bar:
            try:
                checked = await audit.verify_chain(engine, progress=bar.advance)
            except AuditError as exc:
                print(t("audit.bad", seq=exc.sequence, reason=exc.reason), file=sys.stderr)
                return EXIT_BAD_INPUT
        print(t("audit.ok", count=checked))
        return EXIT_OK
    finally:
        await engine.dispose()


async def cmd_audit_export(url: str, fmt: str, output: Path | None) -> int:
    from alertcast import audit

    engine = await _engine(url)
    try:
        export = audit.export_csv if fmt == "csv" else audit.export_jsonl
        if output is None:
            await export(audit.iter_records(engine), sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                await export(audit.iter_records(engine), handle)
        return EXIT_OK
    finally:
        await engine.dispose()


async def cmd_audit_tail(url: str, n: int) -> int:
    from alertcast import audit

    engine = await _engine(url)
    try:
        for record in await audit.tail(engine, n):
            print(json.dumps(record.to_json(), ensure_ascii=False))
        return EXIT_OK
    finally:
        await engine.dispose()


def cmd_demo(port: int, data_dir: Path | None) -> int:
    """Lay out a fresh demo folder and serve it, dropping sample alerts into its inbox.

    The fake Telegram Bot API starts first, in the same event loop: its port
    goes into the demo's channel file, and it must answer before the first drill
    is sent. It stops after the service, whatever ends the service.
    """
    from alertcast import demo
    from alertcast.app import Runtime, serve
    from alertcast.log import configure_logging

    if data_dir is None:
        root = Path(tempfile.mkdtemp(prefix="alertcast-demo-"))
    else:
        root = data_dir.resolve()
        demo.reset(root)
    os.environ.pop("ALERTCAST_DATABASE_URL", None)  # the demo always runs on its own SQLite
    # The demo's own fake token, for its own fake Bot API: set here so the channel finds it.
    os.environ[demo.TELEGRAM_TOKEN_ENV] = demo.TELEGRAM_TOKEN

    async def main() -> None:
        async with demo.fake_telegram() as telegram:
            config_path = demo.write_demo_config(root, port, telegram.api_url)
            config = load_config(config_path)
            configure_logging(config.service.log_level, config.service.log_format)
            print(t("demo.data_dir", path=root), file=sys.stderr)
            print(t("demo.telegram", url=f"{telegram.api_url}/"), file=sys.stderr)

            async def on_ready(runtime: Runtime) -> None:
                bound_port = runtime.site_url.rsplit(":", 1)[1]
                print(
                    t("serve.listening", host=config.service.host, port=bound_port),
                    file=sys.stderr,
                )
                if runtime.officers is not None:
                    officers = await demo.add_demo_officers(runtime.officers.users)
                    print(
                        t("demo.console", host=config.service.host, port=bound_port),
                        file=sys.stderr,
                    )
                    for name, role, password in officers:
                        print(
                            t("demo.officer", name=name, role=role.value, password=password),
                            file=sys.stderr,
                        )
                await demo.drip_samples(config.service.data_dir / "inbox")

            await serve(config, on_ready=on_ready)

    asyncio.run(main())
    return EXIT_OK
