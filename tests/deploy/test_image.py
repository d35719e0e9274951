"""The container image, without Docker: its install lines, entry point and health check.

The image's build stage installs with two ``pip install`` RUN lines. This
module runs those exact lines, as ``/bin/sh -c`` would in the build, in a
fresh virtual environment laid out like the build context (the files the
stage COPYs). The environment reuses this interpreter's installed packages
through a ``.pth`` line, so the dependencies are already satisfied and only
the build tools of ``[build-system] requires`` may be fetched (from the
package index pip is configured with, as ``make test`` itself needs); the
second line builds and installs alertcast with nothing fetched. Then the
image's ENTRYPOINT runs ``check`` on the shipped configuration, and the
image's HEALTHCHECK command runs against a live ``alertcast serve``.
"""

from __future__ import annotations

import os
import shutil
import site
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.deployfiles import (
    CONFIG_IN_IMAGE,
    EXAMPLE_CONFIG,
    REPO,
    copies,
    dockerfile_stages,
    install_commands,
    probe_paths,
)

INSTALL_TIMEOUT_S = 90.0
START_TIMEOUT_S = 30.0
STAGES = dockerfile_stages()
BUILD, FINAL = STAGES[0], STAGES[-1]


@dataclass(frozen=True)
class Installed:
    venv: Path
    env: dict[str, str]

    def run(
        self, argv: list[str], cwd: Path, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )


def _hermetic_env(venv: Path) -> dict[str, str]:
    """This process's environment with the venv first on PATH, as the image's ENV sets it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ALERTCAST_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _lay_out_context(root: Path) -> None:
    """The build stage's COPY lines, applied to a copy of the repository's files.

    Destinations are relative to the stage's WORKDIR, which ``root`` stands for.
    """
    for sources, destination in copies(BUILD):
        assert not destination.startswith("/"), f"COPY to {destination}, outside WORKDIR"
        into_folder = destination.endswith("/") or len(sources) > 1
        for source in sources:
            origin = REPO / source
            assert origin.exists(), f"COPY {source}: no such file in the repository"
            target = root / destination / origin.name if into_folder else root / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    context = tmp_path_factory.mktemp("build-context")
    _lay_out_context(context)
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # This interpreter's packages (pip and alertcast's dependencies), after the venv's own.
    Path(purelib, "zz_test_suite_packages.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n", encoding="utf-8"
    )
    result = Installed(venv=venv, env=_hermetic_env(venv))
    commands = install_commands(BUILD)
    assert len(commands) == 2, commands
    started = time.monotonic()
    for command in commands:
        done = result.run(["/bin/sh", "-c", command], cwd=context, timeout=INSTALL_TIMEOUT_S)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert time.monotonic() - started < INSTALL_TIMEOUT_S
    return result


def test_the_second_install_line_builds_alertcast_alone_offline() -> None:
    """Step 2 fetches nothing: every dependency was installed by step 1's layer."""
    first, second = install_commands(BUILD)
    assert "pyproject.toml" in first and "-r requirements.txt" in first
    assert second == "python -m pip install --no-cache-dir --no-deps --no-build-isolation ."


def test_the_image_installs_alertcast_into_its_own_environment(
    installed: Installed, tmp_path: Path
) -> None:
    where = installed.run(
        ["python", "-c", "import alertcast, sys; print(alertcast.__file__); print(sys.prefix)"],
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    module_file, prefix = where.stdout.split()
    assert Path(module_file).is_relative_to(installed.venv), module_file
    assert Path(prefix) == installed.venv
    # Package data the service reads at run time came along (migrations, templates).
    package = Path(module_file).parent
    assert list((package / "store" / "migrations" / "versions").glob("0001_*.py"))
    assert list((package / "web" / "templates").glob("*.j2"))


def test_the_entry_point_checks_the_shipped_configuration(
    installed: Installed, tmp_path: Path
) -> None:
    entry = FINAL.one("ENTRYPOINT").exec_form()
    assert entry == ["alertcast"]
    assert shutil.which(entry[0], path=installed.env["PATH"]) == str(
        installed.venv / "bin" / "alertcast"
    )
    # The image copies deploy/alertcast.example.toml to the path its CMD names.
    copied = [(s, d) for s, d in copies(FINAL) if d == CONFIG_IN_IMAGE]
    assert copied == [(["deploy/alertcast.example.toml"], CONFIG_IN_IMAGE)]
    cmd = FINAL.one("CMD").exec_form()
    assert cmd == ["serve", "--config", CONFIG_IN_IMAGE]

    checked = installed.run([*entry, "check", "--config", str(EXAMPLE_CONFIG)], cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_entry_point_migrates_a_database(installed: Installed, tmp_path: Path) -> None:
    """`db upgrade` (compose's and the Job's migration step) from the installed package."""
    env = dict(installed.env, ALERTCAST_DATABASE_URL=f"sqlite:///{tmp_path / 'alertcast.db'}")
    done = subprocess.run(
        ["alertcast", "db", "upgrade", "--config", str(EXAMPLE_CONFIG)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "alertcast.db").is_file()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveService:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def live_service(
    installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """``alertcast serve`` from the installed package, on SQLite and a free port."""
    root = tmp_path_factory.mktemp("served")
    port = _free_port()
    (root / "alertcast.toml").write_text(
        f'[service]\nhost = "127.0.0.1"\nport = {port}\ndata_dir = "data"\n', encoding="utf-8"
    )
    log_path = root / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["alertcast", "serve", "--config", str(root / "alertcast.toml")],
            cwd=root,
            env=installed.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = LiveService(url=f"http://127.0.0.1:{port}", process=process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(service.url + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _healthcheck(installed: Installed, url: str | None, cwd: Path) -> int:
    command = FINAL.one("HEALTHCHECK").exec_form()
    env = dict(installed.env)
    if url is not None:
        env["ALERTCAST_HEALTHCHECK_URL"] = url
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=30).returncode


def test_the_healthcheck_passes_against_a_live_service(
    installed: Installed, live_service: LiveService, tmp_path: Path
) -> None:
    assert _healthcheck(installed, live_service.url + "/healthz", tmp_path) == 0


def test_every_probe_of_the_deployment_files_answers_200_on_a_live_service(
    live_service: LiveService,
) -> None:
    paths = probe_paths()
    assert paths == {"/healthz", "/readyz"}
    for path in sorted(paths):
        with urllib.request.urlopen(live_service.url + path, timeout=5) as answer:
            assert answer.status == 200, path


def test_the_healthcheck_fails_when_nothing_answers(installed: Installed, tmp_path: Path) -> None:
    assert _healthcheck(installed, f"http://127.0.0.1:{_free_port()}/healthz", tmp_path) != 0


def test_the_healthcheck_fails_on_an_error_answer(
    installed: Installed, live_service: LiveService, tmp_path: Path
) -> None:
    assert _healthcheck(installed, live_service.url + "/no-such-page", tmp_path) != 0


def test_the_healthcheck_default_is_the_port_the_image_exposes() -> None:
    command = FINAL.one("HEALTHCHECK").exec_form()
    exposed = FINAL.one("EXPOSE").arguments.split()
    assert exposed == ["8080"]
    assert "'http://127.0.0.1:8080/healthz'" in command[-1]
    assert command[0] == "python"


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    user = FINAL.one("USER").arguments.split(":")[0]
    assert user not in ("root", "0")
