"""A new organisation from nothing, on `make run`, in Chromium: the operator runs one command;
everything after it is clicking.

`flask create-organisation` invites the first organisation admin. She accepts from the email,
chooses her password, sets up two-factor sign-in with an authenticator (pyotp stands in for
the phone, reading the key the page shows), keeps her recovery codes, and is the
organisation's telehealth manager. She invites a clinic admin from the team page and asks for
the Payment Gateway, which the service desk approves; he accepts, sets up two-factor too, and
links the clinic's Stripe account. Signing in again asks him for a fresh code.
"""

import re
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime

import pyotp
import pytest

from sandbox.stripe.control_client import StripeControl
from tests.journeys import emails_to, reload_until, save_screenshot
from tests.processes import ROOT, wait_for

pytestmark = pytest.mark.browser

PASSWORD = "quiet harbour lamp 2026"
LINK = re.compile(r"(http://\S+/invitations/[^\s/]+)")


def operator(product, *arguments: str) -> str:
    """A set-up command run at the server, beside the running product, as its operator."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *arguments],
        cwd=ROOT,
        env=product["env"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def invitation_link(product, address: str) -> str:
    """The link in the newest invitation emailed to ``address``, once it has arrived."""
    wait_for(lambda: emails_to(product, address), 60, f"an invitation to {address}")
    [email] = emails_to(product, address)[-1:]
    return LINK.search(email["text"]).group(1)


def accept_and_enrol(browser, link: str, name: str):
    """Open the invitation, choose a name and password, set up two-factor: the page, the
    authenticator's secret and the time-step of the code that confirmed it."""
    page = browser.new_context().new_page()
    page.goto(link)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("New password again").fill(PASSWORD)
    page.get_by_role("button", name="Join").click()
    page.get_by_role("heading", name="Turn on two-factor sign-in").wait_for()
    assert page.locator("figure.qr-code svg").count() == 1  # drawn on the server
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    step = totp.timecode(datetime.now(UTC))
    page.get_by_label("Code from your app").fill(totp.generate_otp(step))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    assert page.locator(".recovery-codes li").count() == 10
    page.get_by_role("link", name="I have kept them: continue").click()
    page.wait_for_load_state()
    return page, secret, step


def test_a_new_organisation_is_set_up_by_one_command_then_by_clicking(journey_product, chromium):
    product = journey_product
    token = secrets.token_hex(4)
    organisation, clinic = f"Riverside {token} Health", f"Riverside {token} GP"
    first_admin = f"alex-{token}@riverside.example"
    clinic_admin = f"sam-{token}@riverside.example"
    said = operator(
        product, "create-organisation", organisation, "--admin-email", first_admin,
        "--clinic", clinic,
    )  # fmt: skip
    assert f"Invited {first_admin} as its organisation admin" in said

    # The first admin accepts, sets up two-factor, and is the telehealth manager.
    alex, _, _ = accept_and_enrol(chromium, invitation_link(product, first_admin), "Alex Chen")
    alex.goto(f"{product['url']}/team")
    alex.get_by_role("link", name=organisation).click()
    her_row = alex.get_by_role("row").filter(has_text=first_admin)
    assert "Authorised telehealth manager" in her_row.inner_text()

    # She invites a clinic admin for the clinic.
    alex.get_by_label("Email address").fill(clinic_admin)
    alex.get_by_label("Role").select_option(label="Clinic admin")
    alex.get_by_label("Clinic", exact=True).select_option(label=clinic)
    alex.get_by_role("button", name="Send the invitation").click()
    alex.get_by_text(clinic_admin).first.wait_for()
    save_screenshot(alex, f"new-organisation-{product['shape']}-team")

    # As its telehealth manager she asks for the Payment Gateway: straight to the service
    # desk, where an agent approves it.
    alex.goto(f"{product['url']}/client-payments/")
    alex.get_by_role("link", name="Request the Payment Gateway").first.click()
    alex.locator("#clinics-0-selected").check()
    alex.locator("#clinics-0-has_stripe_account").check()
    alex.locator("#clinics-0-stripe_account_hint").fill("accounts@riverside.example")
    alex.get_by_label("Your phone").fill("+61 7 5550 0100")
    alex.get_by_label("I accept the Payment Gateway terms").check()
    alex.get_by_role("button", name="Send request").click()
    reload_until(alex, "With the service desk")
    key = re.search(r"PAY-\d+", alex.content()).group(0)
    agent = chromium.new_page()
    agent.goto(f"{product['jira_url']}/")
    agent.get_by_role("button", name=f"Approve {key}").click()
    reload_until(alex, "Approved: the Payment Gateway is on")

    # He accepts, sets up two-factor, and links the clinic's own Stripe account.
    account_name = f"Riverside {token} GP Pty Ltd"
    account = StripeControl(product["stripe_url"]).account(business_name=account_name)
    sam, sam_secret, sam_step = accept_and_enrol(
        chromium, invitation_link(product, clinic_admin), "Sam Patel"
    )
    sam.goto(f"{product['url']}/client-payments/")
    sam.get_by_role("link", name=clinic).first.click()
    sam.get_by_role("button", name="Go to Stripe").click()
    sam.get_by_label(f"{account_name} ({account})").check()
    sam.get_by_role("button", name="Connect my Stripe account").click()
    sam.wait_for_url(re.compile(r".*/client-payments/clinics/\d+$"))
    reload_until(sam, 'Card payments</dt>\n    <dd><span class="badge on">Enabled')
    save_screenshot(sam, f"new-organisation-{product['shape']}-linked")

    # Signing in again asks for a code: the one used to enrol is refused, a fresh one let in.
    again = chromium.new_context().new_page()
    again.goto(f"{product['url']}/sign-in")
    again.get_by_label("Email").fill(clinic_admin)
    again.get_by_label("Password").fill(PASSWORD)
    again.get_by_role("button", name="Sign in").click()
    again.get_by_role("heading", name="Two-factor sign-in").wait_for()
    totp = pyotp.TOTP(sam_secret)
    again.get_by_label("Code", exact=True).fill(totp.generate_otp(sam_step))
    again.get_by_role("button", name="Sign in").click()
    again.get_by_role("heading", name="Two-factor sign-in").wait_for()
    assert "/sign-in" in again.url
    again.get_by_label("Code", exact=True).fill(totp.at(time.time() + 30))  # the next step's
    again.get_by_role("button", name="Sign in").click()
    again.get_by_role("button", name="Sign out").wait_for()
    assert "/sign-in" not in again.url
