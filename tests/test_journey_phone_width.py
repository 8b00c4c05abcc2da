"""The patient's pages on a phone, on `make run`, in each language at 360, 375 and 414 px wide.

A clinic with a long name asks a patient with a long email address to pay. On the join page,
the call screen with the request open, the Stripe stand-in's Checkout, the confirmation and
the receipt email's page, nothing may reach past the screen's right edge (the page would
scroll sideways, or cut off what it cannot fit). Pay is tapped on the phone-sized Checkout.
Each page is headed by the clinic's name; vcpay's name is only in the footer.
"""

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel import Locale
from babel.support import Translations

from sandbox.stripe.control_client import StripeControl
from tests.journeys import (
    Practice,
    _store_practice,
    emails_to,
    link_stripe,
    save_screenshot,
    signed_in,
)
from tests.processes import wait_for

pytestmark = pytest.mark.browser

WIDTHS = (360, 375, 414)
PHONE_HEIGHT = 740
# Each language as a phone's browser asks for it (Accept-Language), and <html lang> says it.
TRANSLATIONS = Path(__file__).resolve().parent.parent / "vcpay" / "translations"
LANGUAGES = {"en": "en-AU", "sr_Cyrl": "sr-Cyrl", "sr_Latn": "sr-Latn"}
PATIENT = "Anastasija Stojanović-Radovanović"

# Every element whose box reaches past the viewport's right edge: what scrolls sideways,
# or what an ancestor with hidden overflow cuts off.
PAST_THE_EDGE = """() => {
  const width = window.innerWidth;
  const past = [];
  for (const element of document.body.querySelectorAll("*")) {
    const box = element.getBoundingClientRect();
    if (box.width > 1 && box.height > 1 && box.right > width + 0.5) {
      const name = element.tagName.toLowerCase() + "." + element.className;
      const text = element.textContent.trim().slice(0, 60);
      past.push(`${name} right=${Math.round(box.right)}: ${text}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, past: past};
}"""


@dataclass(frozen=True)
class LongNamedPractice(Practice):
    """A practice whose clinic's name is as long as real ones get."""

    @property
    def clinic(self) -> str:
        return f"Northern Beaches Physiotherapy & Sports Injury Clinic {self.token}"


def new_long_named_practice(product: dict) -> LongNamedPractice:
    practice = LongNamedPractice(secrets.token_hex(4))
    account = StripeControl(product["stripe_url"]).account(business_name=practice.account_name)
    practice = replace(practice, account_id=account)
    _store_practice(product["database_url"], practice, gateway_on=True)
    return practice


@pytest.fixture
def practice(journey_product, chromium):
    practice = new_long_named_practice(journey_product)
    link_stripe(chromium, journey_product, practice)
    return practice


def fits_each_width(page, product, name: str) -> None:
    """The page as it is now, at each phone width: no sideways scrolling, nothing cut off."""
    page.wait_for_load_state("load")  # the stylesheet too: a page is measured as it is shown
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": PHONE_HEIGHT})
        measured = page.evaluate(PAST_THE_EDGE)
        save_screenshot(page, f"phone-{product['shape']}-{name}-{width}")
        assert measured["scrollWidth"] <= measured["innerWidth"], (name, width, measured)
        assert not measured["past"], (name, width, measured)
    page.set_viewport_size({"width": WIDTHS[0], "height": PHONE_HEIGHT})


def headed_by_the_clinic(page, clinic: str) -> None:
    """The clinic's name heads the page and is its title; vcpay is named in the footer only."""
    header = page.locator("header").inner_text()
    assert clinic in header, header
    assert clinic in page.title()
    before_the_footer = page.evaluate(
        "() => document.title + document.querySelector('header').innerText"
        " + document.querySelector('main').innerText"
    )
    assert "vcpay" not in before_the_footer.lower(), before_the_footer
    assert "vcpay" in page.locator("footer").inner_text()


def said(language: str, message: str, **values) -> str:
    """``message`` as the product's catalogue words it for ``language``."""
    if language == "en":
        return message % values
    catalogue = Translations.load(str(TRANSLATIONS), [language])
    return catalogue.gettext(message) % values


def sydney_zone_now(language: str) -> str:
    """The demo clinic's zone as the page names it now: "AEDT"/"AEST", in Serbian "GMT+11:00"."""
    from vcpay.clinic_clocks import zone_abbreviation

    locale = Locale.parse("en_AU" if language == "en" else language)
    return zone_abbreviation(datetime.now(ZoneInfo("Australia/Sydney")), locale)


@pytest.mark.parametrize("language", LANGUAGES)
def test_patient_pages_fit_a_phone_and_pay_is_tapped(journey_product, practice, chromium, language):
    product = journey_product
    email = f"pat.citizen.the.long.address.{practice.token}.{language.lower()}@example-health.org"
    name = f"phone-{language}"

    clinician = signed_in(chromium, product, practice.clinician, "/calls/")
    clinician.get_by_label("Patient or appointment (optional)").fill(f"Phone {language}")
    clinician.get_by_role("button", name=f"Start a call at {practice.clinic}").click()
    guest_link = clinician.get_by_label("Patient's link to this call").input_value()

    phone = chromium.new_context(
        viewport={"width": WIDTHS[0], "height": PHONE_HEIGHT},
        has_touch=True,
        locale=LANGUAGES[language],
    )
    patient = phone.new_page()
    patient.goto(guest_link)
    lang = patient.locator("html").get_attribute("lang")
    assert lang.split("-")[0] == "en" if language == "en" else lang == LANGUAGES[language]
    headed_by_the_clinic(patient, practice.clinic)
    fits_each_width(patient, product, f"{name}-1-join")

    patient.locator("#display_name").fill(PATIENT)
    patient.locator("main form button[type=submit]").tap()
    patient.locator("#live-panel").wait_for()
    request = "Initial physiotherapy assessment and treatment plan"
    clinician.get_by_role("button", name="Apps & Tools").click()
    clinician.get_by_label("Amount (A$)").fill("185.50")
    clinician.get_by_label("Description").fill(request)
    clinician.get_by_role("button", name="Request Payment").click()
    patient.locator(".payment-request[data-state=requested] .pay-now").wait_for()
    headed_by_the_clinic(patient, practice.clinic)
    fits_each_width(patient, product, f"{name}-2-call")

    with phone.expect_page() as opened:
        patient.locator(".pay-now button").tap()
    checkout = opened.value
    checkout.wait_for_load_state()
    checkout_url = checkout.url
    assert checkout_url.startswith(product["stripe_url"])
    # Checkout was asked for the patient's language: it has no Serbian, so Croatian (vcpay.i18n).
    lang = checkout.locator("html").get_attribute("lang")
    assert lang == ("en-GB" if language == "en" else "hr"), lang
    fits_each_width(checkout, product, f"{name}-3-checkout")
    checkout.locator("#email").fill(email)
    checkout.locator("#cardnumber").fill("4242 4242 4242 4242")
    checkout.locator("#expiry").fill("12 / 34")
    checkout.locator("#cvc").fill("123")
    checkout.locator("#name").fill(PATIENT)
    pay = checkout.locator("button.pay")
    pay.scroll_into_view_if_needed()
    pay.tap()

    checkout.locator(".confirmation").wait_for()
    confirmation = checkout.locator("main").inner_text()
    for shown in (practice.clinic, "4242", email, sydney_zone_now(language)):
        assert shown in confirmation, shown
    thanks = "Thank you. %(clinic)s has received your payment."
    assert said(language, thanks, clinic=practice.clinic) in confirmation, confirmation
    headed_by_the_clinic(checkout, practice.clinic)
    fits_each_width(checkout, product, f"{name}-4-confirmation")
    checkout.goto(checkout_url)  # paid: Checkout says there is nothing more to pay
    checkout.locator("h1.total").wait_for()
    fits_each_width(checkout, product, f"{name}-4-checkout-complete")

    [receipt] = wait_for(lambda: emails_to(product, email), 30, "the receipt")
    assert practice.clinic in receipt["subject"], receipt["subject"]
    text = receipt["text"].strip()
    assert text.splitlines()[0] == practice.clinic, text
    *before_the_footer, footer = re.split(r"\n\s*\n", text)
    assert "vcpay" not in "\n".join(before_the_footer).lower(), text
    assert "vcpay" in footer, text
    # In the patient's language, on the clinic's clocks with the zone named.
    thanks = said(language, "Thank you for your payment to %(clinic)s.", clinic=practice.clinic)
    assert thanks in text and sydney_zone_now(language) in text, text
    [receipt_link] = re.findall(r"https?://\S+/join/receipts/\S+", text)
    checkout.goto(receipt_link)
    checkout.locator(".confirmation").wait_for()
    headed_by_the_clinic(checkout, practice.clinic)
    fits_each_width(checkout, product, f"{name}-5-receipt")
    phone.close()
    clinician.context.close()


STAFF_PAGES = ("/", "/calls/", "/payments/", "/payouts/", "/client-payments/", "/audit/",
               "/team", "/settings", "/settings/sessions", "/settings/password",
               "/settings/two-factor")  # fmt: skip


def test_a_clinic_admins_pages_never_scroll_sideways_on_a_phone(
    journey_product, practice, chromium
):
    """Staff pages on a phone: a wide table scrolls sideways inside its card (it has more
    columns than a phone has room for); the page itself never does."""
    admin = signed_in(chromium, journey_product, practice.clinic_admin)

    def fits_sideways(name: str) -> None:
        admin.wait_for_load_state("load")
        for width in WIDTHS:
            admin.set_viewport_size({"width": width, "height": PHONE_HEIGHT})
            measured = admin.evaluate(PAST_THE_EDGE)
            assert measured["scrollWidth"] <= measured["innerWidth"], (name, width, measured)
        save_screenshot(admin, f"phone-{journey_product['shape']}-staff{name.replace('/', '-')}")

    for path in STAFF_PAGES:
        admin.goto(f"{journey_product['url']}{path}")
        fits_sideways(path)
    admin.goto(f"{journey_product['url']}/team")
    admin.get_by_role("link", name=practice.clinic).first.click()
    fits_sideways("/clinic-team")
