"""What a person does in the console, step by step, with a screenshot of each step.

Every action a test takes goes through :class:`Journey.step`: when the step
ends its screenshot is saved as ``NN-what.png``; when it fails the screenshot
is saved as ``NN-what-FAILED.png`` and the test fails with the step's name,
the page's address, the screenshot's path and the end of the service's log,
so a red run says where the person got stuck and what the service said.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.browser.conftest import PASSWORDS, Service, artifacts_dir

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

STEP_TIMEOUT_MS = 10_000
"""How long one action or expectation may wait for the page (a person's patience)."""

PROGRESS_TIMEOUT_MS = 30_000
"""How long the fan-out to the fake channels may take to reach 100 %."""

ALERT_PAGE = re.compile(r"/console/alerts/(\d+)(?:[/?#].*)?$")
LOGIN_PAGE = re.compile(r"/console/login(?:[?#].*)?$")
QUEUE_PAGE = re.compile(r"/console/queue(?:[?#].*)?$")
COMPOSE_PAGE = re.compile(r"/console/compose(?:[?#].*)?$")
HUNDRED_PERCENT = re.compile(r"^\s*100\s*%\s*$")
POSITIVE_NUMBER = re.compile(r"^\s*[1-9]\d*\s*$")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


@dataclass
class Journey:
    """The numbered steps of one test, each leaving a screenshot in ``folder``."""

    folder: Path
    service: Service
    count: int = 0
    shots: list[Path] = field(default_factory=list)

    @classmethod
    def for_test(cls, name: str, service: Service) -> Journey:
        folder = artifacts_dir() / _slug(name)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):  # a previous run's pictures would mislead
            old.unlink()
        return cls(folder, service)

    def logged_in(self, browser: Browser, name: str) -> Page:
        """A new window for ``name``, logged in as a step of its own: how every journey starts."""
        page = new_page(browser)
        with self.step(page, f"{name} logs in"):
            log_in(page, self.service, name)
        return page

    def _shoot(self, page: Page, name: str) -> Path:
        path = self.folder / f"{name}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
        except Exception as exc:  # a closed page still lets the failure be reported
            return Path(f"(no screenshot: {exc})")
        self.shots.append(path)
        return path

    @contextmanager
    def step(self, page: Page, title: str) -> Iterator[None]:
        """One thing the person does; its screenshot, or a failure that names it."""
        self.count += 1
        name = f"{self.count:02d}-{_slug(title)}"
        try:
            yield
        except Exception as exc:
            shot = self._shoot(page, name + "-FAILED")
            flash = _flash_text(page)
            raise AssertionError(
                f"step {self.count} failed: {title}\n"
                f"  what went wrong: {type(exc).__name__}: {exc}\n"
                f"  page: {page.url}\n"
                f"  messages on the page: {flash or '(none)'}\n"
                f"  screenshot: {shot}\n"
                f"  end of the service log:\n{self.service.log_tail()}"
            ) from exc
        self._shoot(page, name)


def _flash_text(page: Page) -> str:
    """The console's flash and error messages on the page, if any (for failure reports)."""
    texts: list[str] = []
    for selector in ("#flash", "#flash-error", "#login-error"):
        try:
            locator = page.locator(selector)
            if locator.count():
                texts.append(f"{selector}: {locator.first.inner_text(timeout=500).strip()}")
        except Exception:  # the page may be gone; the report goes on without it
            continue
    return "; ".join(texts)


def new_page(browser: Browser) -> Page:
    """A person's own browser window (own cookies), English, answering confirmations with OK."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def alert_id_of(page: Page) -> int | None:
    """The alert id of the console page open, or None when it is not an alert's page."""
    found = ALERT_PAGE.search(page.url)
    return int(found.group(1)) if found else None


def log_in(page: Page, service: Service, name: str) -> None:
    """Open the login page, sign in as ``name`` and wait for the console's navigation."""
    from playwright.sync_api import expect

    answer = page.goto(service.url + "/console/login")
    assert answer is not None and answer.ok, (
        f"GET /console/login answered {answer.status if answer else 'nothing'}:"
        " the console is not served by `alertcast serve`"
    )
    page.locator("#username").fill(name)
    page.locator("#password").fill(PASSWORDS[name])
    page.locator("#login-submit").click()
    page.locator("#nav-logout, #login-error").first.wait_for()
    error = page.locator("#login-error")
    if error.count():
        raise AssertionError(f"login as {name} refused: {error.first.inner_text().strip()}")
    expect(page.locator("#nav-compose")).to_be_visible()


def log_out(page: Page, service: Service) -> None:
    """Log out, and check the console no longer opens without logging in again."""
    from playwright.sync_api import expect

    page.locator("#nav-logout").click()
    page.wait_for_url(LOGIN_PAGE)
    page.goto(service.url + "/console/")
    expect(page.locator("#username")).to_be_visible()
    expect(page.locator("#nav-logout")).to_have_count(0)


def set_field(page: Page, selector: str, value: str) -> None:
    """Type into a text field, or choose in a select (by value or visible label)."""
    field_ = page.locator(selector)
    tag = field_.evaluate("element => element.tagName.toLowerCase()")
    if tag == "select":
        field_.select_option(value)
    else:
        field_.fill(value)


@dataclass(frozen=True)
class Draft:
    """What the person types into the compose form."""

    headline: str
    description: str
    instruction: str
    area: str
    severity: str = "Severe"
    urgency: str = "Immediate"
    certainty: str = "Observed"
    event: str = "Sismo"
    category: str = "Geo"
    status: str = "Actual"
    geocode: str = "INEGI_CVEGEO:09"
    polygon: str = "19.59,-99.36 19.59,-98.94 19.05,-98.94 19.05,-99.36 19.59,-99.36"


def open_compose(page: Page) -> None:
    """Open the compose form from the navigation."""
    page.locator("#nav-compose").click()
    page.wait_for_url(COMPOSE_PAGE)


def fill_compose(page: Page, draft: Draft) -> None:
    """Fill the compose form's CAP fields (the form is open)."""
    set_field(page, "#status", draft.status)
    set_field(page, "#headline", draft.headline)
    set_field(page, "#description", draft.description)
    set_field(page, "#instruction", draft.instruction)
    set_field(page, "#event", draft.event)
    set_field(page, "#category", draft.category)
    set_field(page, "#severity", draft.severity)
    set_field(page, "#urgency", draft.urgency)
    set_field(page, "#certainty", draft.certainty)
    set_field(page, "#area-desc", draft.area)
    geocode = page.locator("#area-geocode")
    polygon = page.locator("#area-polygon")
    if geocode.count() and geocode.is_visible():
        set_field(page, "#area-geocode", draft.geocode)
    elif polygon.count() and polygon.is_visible():
        set_field(page, "#area-polygon", draft.polygon)
    else:
        raise AssertionError("the compose form shows neither #area-geocode nor #area-polygon")


def sms_segments(page: Page, channel: str) -> int:
    """Wait for the live preview of ``channel``; its first SMS segment count (≥ 1)."""
    from playwright.sync_api import expect

    route = page.locator(f'#preview .preview-route[data-channel="{channel}"]')
    expect(route.first).to_be_visible()
    segments = route.first.locator(".preview-segments").first
    expect(segments).to_have_text(POSITIVE_NUMBER)
    return int(segments.inner_text().strip())


def submit_compose(page: Page) -> int:
    """Submit the compose form; the id of the alert page it lands on."""
    before = page.url
    page.locator("#compose-submit").click()
    page.wait_for_url(ALERT_PAGE)
    alert_id = alert_id_of(page)
    assert alert_id is not None, f"after submitting, {before} led to {page.url}"
    return alert_id


def open_alert(page: Page, service: Service, alert_id: int) -> None:
    """Open an alert's page directly (as from a bookmark or a link in a message)."""
    answer = page.goto(f"{service.url}/console/alerts/{alert_id}")
    assert answer is not None and answer.ok, (
        f"GET /console/alerts/{alert_id} answered {answer.status if answer else 'nothing'}"
    )


def open_from_queue(page: Page, alert_id: int) -> None:
    """Open the approval queue from the navigation, then the alert from its list."""
    page.locator("#nav-queue").click()
    page.wait_for_url(QUEUE_PAGE)
    link = page.locator(f'a[href$="/alerts/{alert_id}"]')
    assert link.count(), f"alert {alert_id} is not listed in the approval queue ({page.url})"
    link.first.click()
    page.wait_for_url(ALERT_PAGE)
    assert alert_id_of(page) == alert_id, f"the queue's link led to {page.url}"


def state_is(page: Page, state: str) -> None:
    """``#alert-state`` shows ``state`` (waiting for the page to get there)."""
    from playwright.sync_api import expect

    expect(page.locator("#alert-state")).to_have_text(state, use_inner_text=True)
