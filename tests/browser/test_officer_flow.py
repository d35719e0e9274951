"""The console as duty officers use it, in a real browser against the real service.

An officer composes a real alert and sees what the SMS will cost in segments
before submitting it; she cannot approve her own alert; an approver does, and
the fan-out reaches 100 % on the (fake) channels; she cancels it in one click,
and the Cancel waits for a second person like any real alert. A drill looks
like a drill from the compose form on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.browser.conftest import APPROVER, DRILL_TARGET, OFFICER, SMS_TARGET, Service
from tests.browser.console import (
    HUNDRED_PERCENT,
    PROGRESS_TIMEOUT_MS,
    Draft,
    Journey,
    alert_id_of,
    fill_compose,
    log_in,
    log_out,
    new_page,
    open_alert,
    open_compose,
    open_from_queue,
    sms_segments,
    state_is,
    submit_compose,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REAL = Draft(
    headline="Sismo fuerte en la Ciudad de Mexico",
    description="Se registro un sismo de magnitud 7.1 con epicentro en la costa de Guerrero.",
    instruction="Alejese de ventanas y muros. No use elevadores. Siga a los brigadistas.",
    area="Ciudad de Mexico",
)

DRILL = Draft(
    headline="Simulacro de sismo en la Ciudad de Mexico",
    description="Simulacro nacional: hipotesis de sismo de magnitud 8.1 en Guerrero.",
    instruction="Participe en el simulacro: repliegue y evacuacion segun su plan.",
    area="Ciudad de Mexico",
    status="Exercise",
)


def test_officer_composes_approver_approves_officer_cancels(
    browser: Browser, service: Service
) -> None:
    from playwright.sync_api import expect

    journey = Journey.for_test("officer-flow", service)
    ana = journey.logged_in(browser, OFFICER)
    beto = new_page(browser)

    with journey.step(ana, "ana composes an Actual alert"):
        open_compose(ana)
        fill_compose(ana, REAL)
        expect(ana.locator("#exercise-banner")).to_be_hidden()

    with journey.step(ana, "the preview shows the SMS segment count"):
        segments = sms_segments(ana, "sms")
        assert 1 <= segments <= 3, f"{segments} SMS segments, the channel is set to at most 3"
        expect(ana.locator('#preview .preview-route[data-channel="console"]').first).to_be_visible()

    with journey.step(ana, "ana submits and lands on the alert page"):
        alert_id = submit_compose(ana)
        state_is(ana, "submitted")
        expect(ana.locator("#exercise-banner")).to_be_hidden()

    with journey.step(ana, "ana tries to approve her own alert and is refused"):
        approve = ana.locator("#approve")
        if approve.count():  # shown to her, the refusal must be
            approve.click()
            expect(
                ana.locator("#flash-error"), "no refusal shown when ana approved her own alert"
            ).to_be_visible()
            expect(ana.locator("#flash-error")).not_to_be_empty()

    with journey.step(ana, "her alert still waits for approval and nothing was sent"):
        open_alert(ana, service, alert_id)
        expect(
            ana.locator("#alert-state"), "ana's approval of her own Actual alert was accepted"
        ).to_have_text("submitted")
        assert service.twilio is not None
        assert service.twilio.bodies_to(SMS_TARGET) == [], "an SMS left before any approval"

    with journey.step(ana, "ana logs out"):
        log_out(ana, service)

    with journey.step(beto, "beto logs in"):
        log_in(beto, service, APPROVER)

    with journey.step(beto, "beto opens the alert from the approval queue"):
        open_from_queue(beto, alert_id)
        state_is(beto, "submitted")

    with journey.step(beto, "beto approves"):
        beto.locator("#approve").click()
        state_is(beto, "active")

    with journey.step(beto, "the progress reaches 100 percent"):
        expect(
            beto.locator("#progress-percent"),
            "the fan-out did not reach 100 % on the fake channels",
        ).to_have_text(HUNDRED_PERCENT, timeout=PROGRESS_TIMEOUT_MS)
        expect(beto.locator('.progress-channel[data-channel="sms"]')).to_have_count(1)
        expect(beto.locator('.progress-channel[data-channel="console"]')).to_have_count(1)
        sent = service.twilio.bodies_to(SMS_TARGET)
        assert sent, "the progress says 100 % but the fake Twilio received no SMS"
        assert service.twilio.bodies_to(DRILL_TARGET) == [], "a real alert reached the drill phone"

    with journey.step(ana, "ana logs back in and opens her alert"):
        log_in(ana, service, OFFICER)
        open_alert(ana, service, alert_id)
        state_is(ana, "active")

    with journey.step(ana, "ana cancels it and a Cancel waits for approval"):
        ana.locator("#cancel-alert").click()
        ana.wait_for_url(lambda url: bool(re.search(rf"/console/alerts/(?!{alert_id}\b)\d+", url)))
        cancel_id = alert_id_of(ana)
        assert cancel_id is not None and cancel_id != alert_id, (
            f"cancelling led to {ana.url}, not to the page of a new Cancel"
        )
        state_is(ana, "submitted")

    with journey.step(ana, "the cancelled alert stays in force until the Cancel is approved"):
        open_alert(ana, service, alert_id)
        state_is(ana, "active")

    with journey.step(beto, "beto approves the Cancel from the queue"):
        open_from_queue(beto, cancel_id)
        state_is(beto, "submitted")
        beto.locator("#approve").click()
        expect(beto.locator("#alert-state")).not_to_have_text("submitted")

    with journey.step(beto, "the original alert is cancelled"):
        open_alert(beto, service, alert_id)
        state_is(beto, "cancelled")

    assert len(journey.shots) == journey.count


def test_an_exercise_is_marked_as_one_on_compose_and_on_its_page(
    browser: Browser, service: Service
) -> None:
    from playwright.sync_api import expect

    journey = Journey.for_test("exercise-banner", service)
    ana = journey.logged_in(browser, OFFICER)

    with journey.step(ana, "the compose form of a real alert shows no exercise banner"):
        open_compose(ana)
        expect(ana.locator("#exercise-banner")).to_be_hidden()

    with journey.step(ana, "choosing Exercise shows the exercise banner"):
        fill_compose(ana, DRILL)
        expect(ana.locator("#exercise-banner")).to_be_visible()
        expect(ana.locator("#exercise-banner")).not_to_be_empty()

    with journey.step(ana, "the preview shows the drill going only to the drill channels"):
        segments = sms_segments(ana, "sms-drill")
        assert segments >= 1
        drill_sms = ana.locator('#preview .preview-route[data-channel="sms-drill"] .preview-text')
        expect(drill_sms.first, "the drill's SMS lacks the exercise prefix").to_contain_text(
            re.compile(r"SIMULACRO|EXERCISE")
        )
        expect(ana.locator('#preview .preview-route[data-channel="sms"]')).to_have_count(0)

    with journey.step(ana, "the submitted exercise's page shows the banner"):
        submit_compose(ana)
        state_is(ana, "submitted")
        expect(ana.locator("#exercise-banner")).to_be_visible()

    assert len(journey.shots) == journey.count


def test_an_approver_cannot_approve_the_alert_he_composed(
    browser: Browser, service: Service
) -> None:
    from playwright.sync_api import expect

    journey = Journey.for_test("two-person-rule", service)
    beto = journey.logged_in(browser, APPROVER)

    with journey.step(beto, "beto composes and submits an Actual alert"):
        open_compose(beto)
        fill_compose(beto, REAL)
        sms_segments(beto, "sms")
        alert_id = submit_compose(beto)
        state_is(beto, "submitted")

    with journey.step(beto, "beto approves his own alert and is refused"):
        beto.locator("#approve").click()
        expect(
            beto.locator("#flash-error"), "no refusal shown when beto approved his own alert"
        ).to_be_visible()

    with journey.step(beto, "the alert still waits for a second person"):
        open_alert(beto, service, alert_id)
        expect(
            beto.locator("#alert-state"), "the two-person rule let beto approve his own alert"
        ).to_have_text("submitted")

    assert len(journey.shots) == journey.count
