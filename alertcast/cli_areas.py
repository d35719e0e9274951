"""``alertcast areas``: the catalogue of places people subscribe to.

* ``areas import FILE.geojson --scheme INEGI_CVEGEO --code-field CVEGEO
  --name-field NOMGEO`` imports (or replaces, code by code) the polygons of a
  GeoJSON file in WGS 84. A bad feature is reported with its index and the
  reason, and the rest are imported all the same; the import is audited with
  the file's SHA-256.
* ``areas list [--search TEXT]`` prints the catalogue, or the areas whose
  name holds the text (accents and case ignored), ``--json`` for scripts.

Exit codes follow ``alertcast``'s: 0 when all went well, 1 when some features
were left out or the file could not be imported, 2 for a wrong command line or
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from alertcast.config import load_config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2

_PAGE = 500


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``areas import`` and ``areas list`` to the ``alertcast`` command."""
    parser = sub.add_parser("areas", help="the catalogue of places people subscribe to")
    actions = parser.add_subparsers(dest="areas_command", required=True, metavar="ACTION")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, help="alertcast.toml (default: ./alertcast.toml)")
        return p

    p = with_config(actions.add_parser("import", help="import the polygons of a GeoJSON file"))
    p.add_argument("file", type=Path, metavar="FILE.geojson")
    p.add_argument(
        "--scheme",
        required=True,
        help="the CAP geocode scheme of the codes (INEGI_CVEGEO, FIPS, UGC, NUTS3, EMMA_ID...)",
    )
    p.add_argument("--code-field", required=True, help="feature property holding the code")
    p.add_argument("--name-field", required=True, help="feature property holding the name")
    p.set_defaults(func=cmd_import)

    p = with_config(actions.add_parser("list", help="the areas, or those whose name holds TEXT"))
    p.add_argument("--search", metavar="TEXT", help="accent- and case-insensitive name search")
    p.add_argument("--json", action="store_true", help="one JSON object per area")
    p.set_defaults(func=cmd_list)


def _err(text: object) -> None:
    sys.stderr.write(f"{text}\n")


async def _engine(url: str) -> AsyncEngine:
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade

    await upgrade(url)
    return make_engine(url)


# --------------------------------------------------------------------------- areas import


def cmd_import(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(
        _import(
            config.database_url,
            args.file,
            scheme=args.scheme,
            code_field=args.code_field,
            name_field=args.name_field,
            out=sys.stdout,
        )
    )


async def _import(
    url: str, file: Path, *, scheme: str, code_field: str, name_field: str, out: TextIO
) -> int:
    from alertcast.areas import AreaCatalogue, AreaError, FeatureProblem
    from alertcast.progress import Progress

    problems: list[FeatureProblem] = []
    engine = await _engine(url)
    try:
        with Progress(None, f"importing {file.name}") as bar:
            count = await AreaCatalogue(engine).import_geojson(
                file,
                scheme=scheme,
                code_field=code_field,
                name_field=name_field,
                actor="cli",
                progress=bar,
                problems=problems,
            )
    except AreaError as exc:
        _err(f"error: {exc}")
        return EXIT_BAD_INPUT
    finally:
        await engine.dispose()
    for problem in problems:
        _err(f"skipped {problem}")
    out.write(f"imported {count} areas from {file.name}")
    out.write(f" ({len(problems)} skipped)\n" if problems else "\n")
    return EXIT_BAD_INPUT if problems else EXIT_OK


# --------------------------------------------------------------------------- areas list


def cmd_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(
        _list(config.database_url, search=args.search or "", as_json=args.json, out=sys.stdout)
    )


async def _list(url: str, *, search: str, as_json: bool, out: TextIO) -> int:
    from alertcast.areas import AreaCatalogue

    engine = await _engine(url)
    try:
        catalogue = AreaCatalogue(engine)
        offset, shown, total = 0, 0, None
        while total is None or offset < total:
            page, total = await catalogue.search(search, offset=offset, limit=_PAGE)
            if not page:
                break
            for area in page:
                if as_json:
                    out.write(json.dumps(area.to_json(), ensure_ascii=False) + "\n")
                else:
                    out.write(f"{area.code}\t{area.name}\n")
            shown += len(page)
            offset += len(page)
    finally:
        await engine.dispose()
    if not shown and not as_json:
        _err(
            "no areas match" if search else "the catalogue is empty (see 'alertcast areas import')"
        )
    return EXIT_OK
