"""The browser tests' harness: the real service, a fake Twilio, Debian's Chromium.

The console is tested as people use it: ``alertcast serve`` runs as a separate
process (the same entry point operators start) on a fresh SQLite database,
with officers created beforehand by ``alertcast users add`` and a rules file
that sends every real alert to a ``console`` channel and an ``sms`` channel,
and every drill to their drill twins (``console-drill``, ``sms-drill``, marked
``test_only``; each SMS channel posts to a phone of its own). The SMS channels
talk the real Twilio SDK to :class:`tests.fakes.twilio_api.FakeTwilio`, which
runs here in a thread of its own and signs its status callbacks back to the
service, so progress reaches 100 % through the same path as in production.

The browser is the system's Chromium (``apt-get install chromium``), driven by
Playwright's synchronous API from plain (not async) tests; Playwright's own
browser downloads are never used. Where ``/usr/bin/chromium`` is missing the
tests skip with that reason, unless ``CI`` or ``ALERTCAST_REQUIRE_BROWSER=1``
says they must run, in which case they fail.

Screenshots of every step go to ``$ALERTCAST_TEST_ARTIFACTS/browser/<test>/``
(default ``test-artifacts/browser/<test>/`` at the repository root).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO_ROOT
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, SID_ENV, TOKEN_ENV, FakeTwilio
from tests.officers.service_files import SERVED_TOML

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_ENV = "ALERTCAST_REQUIRE_BROWSER"
ARTIFACTS_ENV = "ALERTCAST_TEST_ARTIFACTS"

START_TIMEOUT_S = 30.0
"""How long the service may take to answer /healthz (migrations on a new database included)."""

STOP_TIMEOUT_S = 15.0

OFFICER = "ana"
APPROVER = "beto"
PASSWORDS = {OFFICER: "ana-duty-officer-2026", APPROVER: "beto-approver-2026"}
"""Test-only passwords of the two people the tests play."""

SMS_TARGET = "+15005550101"
"""The phone the public SMS channel posts to (its ``options.target``)."""
DRILL_TARGET = "+15005550199"
"""The phone the drill SMS channel posts to: only exercises reach it."""
SMS_SENDER = "+15005550006"

CONSOLE_TOML = """\
name = "{name}"
kind = "console"
description = "Local announcements (log and file)"
[options]
language = "es"
{test_only}
"""

SMS_TOML = """\
name = "{name}"
kind = "sms"
description = "SMS through a fake Twilio on this computer"
[options]
api_url = "{api_url}"
from = "{sender}"
target = "{target}"
language = "es"
max_segments = 3
timeout_s = 5
{test_only}
[secrets]
account_sid = "{sid_env}"
auth_token = "{token_env}"
"""

RULES_TOML = """\
# Every real alert goes to the console and the public SMS channel after one approval;
# every drill goes to the drill channels only, after one approval too.
[route]
channels = ["console", "sms"]
approval = "one"

[[route.routes]]
name = "drills"
description = "Exercises and tests: only the drill channels"
exercise = true
test_audience = "channel-post"
channels = ["console-drill", "sms-drill"]
approval = "one"
"""


def browser_required() -> bool:
    """True in CI (``CI`` set to a true value) or with ``ALERTCAST_REQUIRE_BROWSER=1``."""
    ci = os.environ.get("CI", "").strip().lower()
    return ci in {"1", "true", "yes"} or os.environ.get(REQUIRE_ENV) == "1"


def _skip_or_fail(reason: str) -> None:
    if browser_required():
        pytest.fail(f"{reason} (the browser tests are required here: CI or {REQUIRE_ENV}=1)")
    pytest.skip(reason)


def artifacts_dir() -> Path:
    """Where the browser tests put their screenshots."""
    root = os.environ.get(ARTIFACTS_ENV)
    base = Path(root) if root else REPO_ROOT / "test-artifacts"
    return base / "browser"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alertcast_command() -> list[str]:
    """The ``alertcast`` command as installed beside this Python (the users' entry point)."""
    script = Path(sys.executable).with_name("alertcast")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "alertcast"]


# --------------------------------------------------------------------------- fake Twilio


class ThreadedTwilio:
    """A :class:`FakeTwilio` serving from a thread with its own event loop.

    The tests are synchronous (Playwright's sync API may not run inside an
    event loop), so the fake gets a loop of its own; its records are read
    through that loop, never from under it.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-twilio", daemon=True
        )
        self._fake: FakeTwilio | None = None
        self.url = ""

    def _call(self, coro: Any, timeout_s: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def start(self) -> None:
        self._thread.start()

        async def enter() -> FakeTwilio:
            fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
            return await fake.__aenter__()

        self._fake = self._call(enter())
        self.url = self._fake.url

    def stop(self) -> None:
        if self._fake is not None:
            with contextlib.suppress(Exception):
                self._call(self._fake.__aexit__(None, None, None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def bodies_to(self, to: str) -> list[str]:
        """The text of every message the fake accepted for ``to``, in arrival order."""
        fake = self._fake
        assert fake is not None

        async def read() -> list[str]:
            return [str(m["body"]) for m in fake.messages.values() if m["to"] == to]

        result: list[str] = self._call(read())
        return result


# --------------------------------------------------------------------------- the service


@dataclass
class Service:
    """``alertcast serve`` running on a folder of its own; ``url`` is where it listens."""

    root: Path
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    twilio: ThreadedTwilio | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.root / "alertcast.toml"

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``alertcast ARGS --config ...`` as an operator would, on this service's files."""
        return subprocess.run(
            [*alertcast_command(), *args, "--config", str(self.config)],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=60,
            check=False,
        )

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the service's log, for failure messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no service log)"
        return text[-chars:]

    def start(self) -> None:
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                [
                    *alertcast_command(),
                    "serve",
                    "--config",
                    str(self.config),
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.root,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"`alertcast serve` exited with {self.process.returncode} before answering"
                    f" /healthz; its log:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(
            f"`alertcast serve` did not answer {self.url}/healthz within {START_TIMEOUT_S:.0f} s;"
            f" its log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def write_service_folder(root: Path, port: int, twilio_url: str) -> None:
    """Lay out alertcast.toml, the four channels and rules.toml under ``root``."""
    (root / "feeds").mkdir(parents=True)
    channels = root / "channels"
    channels.mkdir()
    (root / "alertcast.toml").write_text(
        SERVED_TOML.format(
            port=port, database_url=f"sqlite:///{(root / 'data' / 'alertcast.db').as_posix()}"
        ),
        encoding="utf-8",
    )
    for name, test_only in (("console", ""), ("console-drill", "test_only = true")):
        (channels / f"{name}.toml").write_text(
            CONSOLE_TOML.format(name=name, test_only=test_only), encoding="utf-8"
        )
    for name, target, test_only in (
        ("sms", SMS_TARGET, ""),
        ("sms-drill", DRILL_TARGET, "test_only = true"),
    ):
        (channels / f"{name}.toml").write_text(
            SMS_TOML.format(
                name=name,
                api_url=twilio_url,
                sender=SMS_SENDER,
                target=target,
                test_only=test_only,
                sid_env=SID_ENV,
                token_env=TOKEN_ENV,
            ),
            encoding="utf-8",
        )
    (root / "rules.toml").write_text(RULES_TOML, encoding="utf-8")


def _service_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ALERTCAST_DATABASE_URL"}
    env.update({SID_ENV: ACCOUNT_SID, TOKEN_ENV: AUTH_TOKEN, "ALERTCAST_LANG": "en"})
    return env


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="package")
def chromium_executable() -> Path:
    """Debian's Chromium, and Playwright to drive it; skipped (or failed in CI) when absent."""
    if not CHROMIUM.is_file():
        _skip_or_fail(
            f"{CHROMIUM} is missing (install Debian's Chromium: apt-get install chromium)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _skip_or_fail("Playwright for Python is not installed (pip install -e '.[dev]')")
    return CHROMIUM


@pytest.fixture(scope="package")
def fake_twilio() -> Iterator[ThreadedTwilio]:
    twilio = ThreadedTwilio()
    twilio.start()
    try:
        yield twilio
    finally:
        twilio.stop()


@pytest.fixture(scope="package")
def service(
    chromium_executable: Path,
    fake_twilio: ThreadedTwilio,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    """The service with its two officers, started once for the browser tests.

    ``chromium_executable`` comes first so that where the browser is missing
    nothing is started only to be skipped.
    """
    root = tmp_path_factory.mktemp("console-service")
    port = _free_port()
    write_service_folder(root, port, fake_twilio.url)
    artifacts = artifacts_dir()
    artifacts.mkdir(parents=True, exist_ok=True)
    service = Service(
        root=root,
        port=port,
        env=_service_env(),
        log_path=artifacts / "service.log",
        twilio=fake_twilio,
    )
    for name, role in ((OFFICER, "officer"), (APPROVER, "approver")):
        done = service.cli(
            "users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORDS[name] + "\n"
        )
        assert done.returncode == 0, (
            f"`alertcast users add {name} --role {role} --password-stdin` failed"
            f" ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="package")
def browser(chromium_executable: Path) -> Iterator[Browser]:
    """One headless Chromium for the package; each person gets a context of their own."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser.console import STEP_TIMEOUT_MS

    expect.set_options(timeout=STEP_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()
