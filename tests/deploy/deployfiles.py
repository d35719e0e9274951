"""Readers for the files in ``deploy/``, shared by the deployment tests.

Docker, Compose, systemd and Kubernetes are not run here, so the tests prove
consistency instead: the image installs with the commands the tests run, its
probes and commands are ones the application answers, and every configuration
the deployment mounts loads with :func:`alertcast.config.load_config`.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
EXAMPLE_CONFIG = DEPLOY / "alertcast.example.toml"
COMPOSE = DEPLOY / "compose.yaml"
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"

CONFIG_IN_IMAGE = "/etc/alertcast/alertcast.toml"
"""Where the image, the units and the manifests all expect the configuration."""


@dataclass
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form instruction (CMD, ENTRYPOINT, HEALTHCHECK CMD)."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text[text.index("CMD") + len("CMD") :]
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
        return value


@dataclass
class Stage:
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in the stage FROM {self.base}: {found}"
        return found[0]


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The Dockerfile's stages, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append(Stage(base=arguments.split()[0]))
            continue
        assert stages, f"instruction before FROM: {line}"
        stages[-1].instructions.append(Instruction(keyword, arguments.strip()))
    return stages


def install_commands(stage: Stage) -> list[str]:
    """The stage's RUN lines that install with pip, in order."""
    return [i.arguments for i in stage.all("RUN") if "pip install" in i.arguments]


def copies(stage: Stage) -> list[tuple[list[str], str]]:
    """The stage's ``COPY`` sources (relative to the build context) and destination."""
    result: list[tuple[list[str], str]] = []
    for instruction in stage.all("COPY"):
        words = [w for w in shlex.split(instruction.arguments) if not w.startswith("--")]
        result.append((words[:-1], words[-1]))
    return result


# -- alertcast.example.toml -------------------------------------------------------------

_COMMENTED_KEY = re.compile(r"^# ([a-z_]+ = .*)$")
_BLOCK_START = re.compile(r"^# >>> ((?:feeds|channels)/[a-z0-9_.-]+\.toml)$")
_BLOCK_END = "# <<<"


def uncommented(text: str) -> str:
    """The example with every ``# key = value`` line made active (blocks left as comments)."""
    lines = []
    inside_block = False
    for line in text.splitlines():
        if _BLOCK_START.match(line):
            inside_block = True
        elif line == _BLOCK_END:
            inside_block = False
        match = None if inside_block else _COMMENTED_KEY.match(line)
        lines.append(match.group(1) if match else line)
    return "\n".join(lines) + "\n"


def catalogue_blocks(text: str) -> dict[str, str]:
    """The example's commented catalogue files: relative path → TOML text."""
    blocks: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        start = _BLOCK_START.match(line)
        if start:
            assert current is None, f"block {start.group(1)} opens inside {current}"
            current, body = start.group(1), []
        elif line == _BLOCK_END:
            assert current is not None, "a block closes that never opened"
            blocks[current] = "\n".join(body) + "\n"
            current = None
        elif current is not None:
            assert line.startswith("#"), f"a line of block {current} is not commented: {line!r}"
            body.append(line[1:].strip())
    assert current is None, f"block {current} never closes"
    return blocks


# -- YAML -------------------------------------------------------------------------------


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        documents = [d for d in yaml.safe_load_all(handle) if d is not None]
    assert all(isinstance(d, dict) for d in documents), path
    return documents


def kubernetes_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml_documents(path):
            yield path, document


def kubernetes_object(kind: str, name: str) -> dict[str, Any]:
    found = [
        d
        for _, d in kubernetes_objects()
        if d.get("kind") == kind and d["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def lay_out_projected_volume(
    volume: dict[str, Any], config_maps: dict[str, dict[str, str]], root: Path
) -> None:
    """Write what a projected (or plain) ConfigMap volume would show under ``root``."""
    if "configMap" in volume:
        sources = [{"configMap": volume["configMap"]}]
    else:
        sources = volume["projected"]["sources"]
    for source in sources:
        reference = source["configMap"]
        data = config_maps[reference["name"]]
        items = reference.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            assert item["key"] in data, f"ConfigMap {reference['name']} has no key {item['key']}"
            target = root / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]], encoding="utf-8")


# -- systemd ----------------------------------------------------------------------------


def unit_file(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


def probe_paths() -> set[str]:
    """Every HTTP path the Kubernetes probes ask for."""
    paths: set[str] = set()
    for _, document in kubernetes_objects():
        if document.get("kind") != "Deployment":
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe in container:
                    paths.add(container[probe]["httpGet"]["path"])
    return paths
