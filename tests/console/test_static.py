"""The console's files: served, vendored, offline, and every message translated."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from alertcast.web.console.i18n import LANGUAGES, catalogue_path
from alertcast.web.console.rendering import TEMPLATES_DIR, content_security_policy, tile_source
from alertcast.web.console.routes import STATIC_DIR
from tests.console.conftest import TILE_URL, Console, login

LEAFLET = STATIC_DIR / "vendor" / "leaflet"
SCRIPTS = ("console.js", "map.js", "preview.js", "progress.js")
URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>)]*""")
VENDOR_ADDRESSES = {
    # Identifiers and comments in Leaflet's own files; none is fetched (see its README.md).
    "http://www.w3.org/2000/svg",
    "https://leafletjs.com",
    "https://bugs.chromium.org/p/chromium/issues/detail?id=600120",
    "https://bugzilla.mozilla.org/show_bug.cgi?id=888319",
}


def _text_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in {".js", ".css", ".j2", ".html"}
    )


@pytest.mark.parametrize("name", [*SCRIPTS, "console.css"])
async def test_static_files_are_served(console: Console, name: str) -> None:
    response = await console.client.get(f"/static/{name}")
    assert response.status == 200
    expected = "application/javascript" if name.endswith(".js") else "text/css"
    assert response.content_type in (expected, "text/javascript")
    assert await response.read() == (STATIC_DIR / name).read_bytes()


async def test_leaflet_is_vendored_with_its_licence(console: Console) -> None:
    readme = (LEAFLET / "README.md").read_text(encoding="utf-8")
    assert "leaflet@1.9.4" in readme
    assert "BSD 2-Clause" in (LEAFLET / "LICENSE").read_text(encoding="utf-8")
    for name in ("leaflet.js", "leaflet.css", "images/marker-icon.png", "images/layers.png"):
        digest = hashlib.sha256((LEAFLET / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in readme, f"{name} differs from the vendored release"
        response = await console.client.get(f"/static/vendor/leaflet/{name}")
        assert response.status == 200
    assert "Leaflet 1.9.4" in (LEAFLET / "leaflet.js").read_text(encoding="utf-8")[:200]


async def test_the_dashboard_loads_leaflet_from_this_site(console: Console) -> None:
    await login(console.client, "vera")
    text = await (await console.client.get("/console/")).text()
    assert '<script src="/static/vendor/leaflet/leaflet.js"></script>' in text
    assert 'href="/static/vendor/leaflet/leaflet.css"' in text


def test_no_template_or_static_file_names_another_host() -> None:
    found: dict[str, list[str]] = {}
    for path in [*_text_files(TEMPLATES_DIR), *_text_files(STATIC_DIR)]:
        addresses = URL.findall(path.read_text(encoding="utf-8"))
        if path.is_relative_to(LEAFLET):
            addresses = [a for a in addresses if a.rstrip(".,;") not in VENDOR_ADDRESSES]
        if addresses:
            found[str(path.relative_to(STATIC_DIR.parent))] = addresses
    assert found == {}


async def test_rendered_pages_name_no_other_host_than_the_tiles(console: Console) -> None:
    await login(console.client, "ana")
    for path in ("/console/", "/console/compose", "/console/audit", "/console/login"):
        text = await (await console.client.get(path)).text()
        assert URL.findall(text.replace(TILE_URL, "")) == [], path


def test_the_tile_host_is_the_only_extra_image_source() -> None:
    assert (
        tile_source("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    )
    assert tile_source("/tiles/{z}/{x}/{y}.png") is None
    assert tile_source(None) is None
    policy = content_security_policy("https://tiles.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://tiles.example.org;" in policy
    assert "connect-src 'self'" in policy and "script-src 'self'" in policy


def test_every_console_message_has_a_spanish_translation() -> None:
    root = TEMPLATES_DIR.parent
    method_map = [("templates/**.j2", "jinja2"), ("**.py", "python")]
    options = {"templates/**.j2": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "N_": None, "tr": (2,)}
    messages = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            root, method_map, options, keywords=keywords
        )
    }
    assert len(messages) > 100
    for language in LANGUAGES:
        with catalogue_path(language).open("rb") as source:
            catalogue = read_po(source)
        assert not (messages - {m.id for m in catalogue}), language
        if language == "es":
            untranslated = sorted(m.id for m in catalogue if m.id and not m.string)
            assert untranslated == []
            placeholders = re.compile(r"%\(\w+\)s")
            for m in catalogue:
                if m.id:
                    assert sorted(placeholders.findall(m.id)) == sorted(
                        placeholders.findall(str(m.string))
                    ), m.id
