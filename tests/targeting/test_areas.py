"""The area catalogue: import, accent-blind search with pagination, points, bad features."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit, cli_areas
from alertcast.areas import (
    AreaCatalogue,
    AreaError,
    FeatureProblem,
    codes_overlap,
    fold_name,
)
from tests.targeting.conftest import DEMO_CATALOGUE

SQUARE = [[[-99.2, 19.3], [-99.1, 19.3], [-99.1, 19.4], [-99.2, 19.4], [-99.2, 19.3]]]


def _feature(code: Any, name: Any, coordinates: Any = SQUARE, kind: str = "Polygon") -> Any:
    return {
        "type": "Feature",
        "properties": {"CVEGEO": code, "NOMGEO": name},
        "geometry": {"type": kind, "coordinates": coordinates},
    }


def _write(path: Path, features: list[Any]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


class _Bar:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0

    def advance(self, steps: int = 1) -> None:
        self.done += steps


async def test_the_demo_catalogue_imports_with_its_codes_and_an_audit_record(
    engine: AsyncEngine,
) -> None:
    catalogue = AreaCatalogue(engine)
    bar = _Bar()
    problems: list[FeatureProblem] = []
    count = await catalogue.import_geojson(
        DEMO_CATALOGUE,
        scheme="INEGI_CVEGEO",
        code_field="CVEGEO",
        name_field="NOMGEO",
        actor="test",
        progress=bar,
        problems=problems,
    )
    assert problems == []
    assert count == 9 == bar.total == bar.done
    codes = await catalogue.all_codes()
    assert "INEGI_CVEGEO:09015" in codes and "INEGI_CVEGEO:15033" in codes
    assert len(codes) == 9

    area = await catalogue.get("inegi_cvegeo:09015")
    assert area is not None
    assert (area.code, area.scheme, area.name, area.value) == (
        "INEGI_CVEGEO:09015",
        "INEGI_CVEGEO",
        "Cuauhtémoc",
        "09015",
    )
    assert area.geometry.contains(area.geometry.representative_point())
    min_lon, min_lat, max_lon, max_lat = area.bbox
    assert min_lon < -99.13 < max_lon and min_lat < 19.43 < max_lat
    assert await catalogue.get("INEGI_CVEGEO:99999") is None
    assert await catalogue.get("no scheme") is None

    (record,) = [r for r in await audit.tail(engine, 5) if r.action == "areas.imported"]
    data = record.data
    assert data["file"] == "mx-demo.geojson"
    assert data["count"] == 9
    assert data["sha256"] == hashlib.sha256(DEMO_CATALOGUE.read_bytes()).hexdigest()


async def test_search_ignores_accents_and_case(catalogue: AreaCatalogue) -> None:
    found, total = await catalogue.search("iztapalapa")
    assert [a.name for a in found] == ["Iztapalapa"] and total == 1

    found, total = await catalogue.search("benito juarez")
    assert [a.name for a in found] == ["Benito Juárez"] and total == 1

    found, _ = await catalogue.search("  CUAUHTEMOC ")
    assert [a.code for a in found] == ["INEGI_CVEGEO:09015"]

    found, _ = await catalogue.search("gustavo a madero")
    assert [a.name for a in found] == ["Gustavo A. Madero"]

    found, _ = await catalogue.search("nezahualcoyotl")
    assert [a.name for a in found] == ["Nezahualcóyotl"]

    found, total = await catalogue.search("tokyo")
    assert (found, total) == ([], 0)

    found, _ = await catalogue.search("09015")
    assert [a.name for a in found] == ["Cuauhtémoc"]


async def test_search_pages_through_every_match_once(catalogue: AreaCatalogue) -> None:
    # "juarez" is in two names; "de" in Ecatepec de Morelos and Naucalpan de Juárez.
    found, total = await catalogue.search("juarez")
    assert total == 2
    assert [a.name for a in found] == ["Benito Juárez", "Naucalpan de Juárez"]

    pages: list[str] = []
    offset = 0
    while True:
        page, total = await catalogue.search("", offset=offset, limit=4)
        assert total == 9
        if not page:
            break
        assert len(page) <= 4
        pages.extend(a.code for a in page)
        offset += len(page)
    assert len(pages) == 9 == len(set(pages))
    assert offset == 9


async def test_names_that_start_with_the_text_come_first(catalogue: AreaCatalogue) -> None:
    found, _ = await catalogue.search("n")
    names = [a.name for a in found]
    starting = [n for n in names if fold_name(n).startswith("n")]
    assert names[: len(starting)] == starting
    assert starting == ["Naucalpan de Juárez", "Nezahualcóyotl"]


async def test_containing_finds_the_area_of_a_point(catalogue: AreaCatalogue) -> None:
    zocalo = (19.4326, -99.1332)
    assert [a.name for a in await catalogue.containing(*zocalo)] == ["Cuauhtémoc"]
    assert await catalogue.containing(25.0, -100.0) == []


async def test_bad_features_are_reported_and_the_rest_imported(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lambert = [[[2800000, 820000], [2810000, 820000], [2810000, 830000], [2800000, 820000]]]
    path = _write(
        tmp_path / "mixed.geojson",
        [
            _feature("09002", "Azcapotzalco"),
            _feature(None, "Sin código"),
            _feature("09010", ""),
            _feature("09012", "Tlalpan", [[-99.2, 19.3]], kind="Point"),
            _feature("09013", "Xochimilco", lambert),
            _feature("09002", "Azcapotzalco otra vez"),
            _feature("9x", "Código roto"),
            "not a feature",
            _feature(9004, "Cuajimalpa"),  # a number: the leading zero comes back
        ],
    )
    problems: list[FeatureProblem] = []
    catalogue = AreaCatalogue(engine)
    count = await catalogue.import_geojson(
        path,
        scheme="INEGI_CVEGEO",
        code_field="CVEGEO",
        name_field="NOMGEO",
        actor="test",
        problems=problems,
    )
    assert count == 2
    assert await catalogue.all_codes() == ["INEGI_CVEGEO:09002", "INEGI_CVEGEO:09004"]
    by_index = {p.index: p for p in problems}
    assert sorted(by_index) == [1, 2, 3, 4, 5, 6, 7]
    assert "CVEGEO" in by_index[1].reason
    assert "NOMGEO" in by_index[2].reason and by_index[2].code == "INEGI_CVEGEO:09010"
    assert "Point" in by_index[3].reason
    assert "EPSG:4326" in by_index[4].reason
    assert "duplicate" in by_index[5].reason and "feature 0" in by_index[5].reason
    assert "CVEGEO" in by_index[6].reason
    assert "Feature" in by_index[7].reason
    assert str(by_index[5]).startswith("feature 5 (INEGI_CVEGEO:09002)")


async def test_an_invalid_polygon_is_repaired_not_refused(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    bow_tie = [[[-99.2, 19.3], [-99.1, 19.4], [-99.1, 19.3], [-99.2, 19.4], [-99.2, 19.3]]]
    path = _write(tmp_path / "bow.geojson", [_feature("09017", "Venustiano Carranza", bow_tie)])
    catalogue = AreaCatalogue(engine)
    assert await catalogue.import_geojson(
        path, scheme="INEGI_CVEGEO", code_field="CVEGEO", name_field="NOMGEO", actor="test"
    )
    area = await catalogue.get("INEGI_CVEGEO:09017")
    assert area is not None and area.geometry.is_valid and area.geometry.area > 0


async def test_reimporting_replaces_by_code_and_geometries_follow(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    catalogue = AreaCatalogue(engine)
    first = _write(tmp_path / "a.geojson", [_feature("09002", "Azcapotzalco")])
    await catalogue.import_geojson(
        first, scheme="INEGI_CVEGEO", code_field="CVEGEO", name_field="NOMGEO", actor="test"
    )
    before = await catalogue.geometries()
    moved = [[[-98.2, 18.3], [-98.1, 18.3], [-98.1, 18.4], [-98.2, 18.3]]]
    second = _write(tmp_path / "b.geojson", [_feature("09002", "Azcapotzalco", moved)])
    await AreaCatalogue(engine).import_geojson(
        second, scheme="INEGI_CVEGEO", code_field="CVEGEO", name_field="NOMGEO", actor="test"
    )
    after = await catalogue.geometries()
    assert list(after) == ["INEGI_CVEGEO:09002"]
    assert before["INEGI_CVEGEO:09002"].bounds != after["INEGI_CVEGEO:09002"].bounds
    assert await catalogue.containing(18.32, -98.15) != []


async def test_a_file_that_is_not_geojson_is_refused_whole(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    catalogue = AreaCatalogue(engine)
    for content in ("not json", '{"type": "Topology"}'):
        path = tmp_path / "bad.geojson"
        path.write_text(content, "utf-8")
        with pytest.raises(AreaError):
            await catalogue.import_geojson(
                path, scheme="INEGI_CVEGEO", code_field="CVEGEO", name_field="NOMGEO", actor="t"
            )
    with pytest.raises(AreaError, match="cannot read"):
        await catalogue.import_geojson(
            tmp_path / "missing.geojson",
            scheme="X",
            code_field="CVEGEO",
            name_field="NOMGEO",
            actor="t",
        )
    assert await catalogue.all_codes() == []


def test_folding_and_scheme_rules() -> None:
    assert fold_name("Benito Juárez") == fold_name("BENITO  juarez") == "benito juarez"
    assert fold_name("Peñón de los Baños") == "penon de los banos"
    assert codes_overlap("INEGI_CVEGEO", "09", "INEGI_CVEGEO", "09015")
    assert codes_overlap("CVEGEO", "09015", "INEGI_CVEGEO", "09")
    assert not codes_overlap("INEGI_CVEGEO", "09015", "INEGI_CVEGEO", "09014")
    assert not codes_overlap("INEGI_CVEGEO", "09", "NUTS3", "09")
    assert codes_overlap("NUTS3", "FR821", "NUTS", "FR8")
    assert not codes_overlap("NUTS3", "FR821", "NUTS3", "FR822")
    # SAME PSSCCC against FIPS SSCCC
    assert codes_overlap("SAME", "006109", "FIPS", "06109")
    assert codes_overlap("SAME", "306109", "FIPS", "06109")  # part of the county
    assert not codes_overlap("SAME", "306109", "SAME", "206109")  # other parts
    assert codes_overlap("SAME", "006000", "FIPS", "06109")  # the whole state
    assert not codes_overlap("FIPS6", "006109", "FIPS", "06009")
    assert codes_overlap("UGC", "MTZ014", "UGC", "mtz014")
    assert codes_overlap("UGC", "MTZALL", "UGC", "MTZ014")
    assert not codes_overlap("UGC", "MTZ014", "UGC", "MTC014")
    assert codes_overlap("EMMA_ID", "FR413", "EMMA_ID", "fr413")
    assert not codes_overlap("EMMA_ID", "FR413", "EMMA_ID", "FR41")


def main(argv: list[str]) -> int:
    """``alertcast areas ...`` through the module's own parsers."""
    parser = argparse.ArgumentParser(prog="alertcast")
    cli_areas.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_the_cli_imports_reports_bad_features_and_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "alertcast.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "a.db"}"\n', "utf-8")
    path = _write(
        tmp_path / "some.geojson",
        [_feature("09002", "Azcapotzalco"), _feature("09003", None)],
    )
    args = ["--config", str(config)]
    assert main(["areas", "import", str(path), "--scheme", "INEGI_CVEGEO",
                 "--code-field", "CVEGEO", "--name-field", "NOMGEO", *args]) == 1  # fmt: skip
    captured = capsys.readouterr()
    assert "imported 1 areas" in captured.out
    assert "feature 1 (INEGI_CVEGEO:09003)" in captured.err

    assert main(["areas", "import", str(DEMO_CATALOGUE), "--scheme", "INEGI_CVEGEO",
                 "--code-field", "CVEGEO", "--name-field", "NOMGEO", *args]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["areas", "list", "--search", "alvaro obregon", *args]) == 0
    assert capsys.readouterr().out == ""
    assert main(["areas", "list", "--search", "ecatepec", *args]) == 0
    assert capsys.readouterr().out == "INEGI_CVEGEO:15033\tEcatepec de Morelos\n"
    assert main(["areas", "list", "--json", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    assert json.loads(lines[0])["code"].startswith("INEGI_CVEGEO:")
