"""What the navigation shows: each person sees the places their roles open."""

from dataclasses import dataclass
from typing import Any

from flask import has_request_context, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from vcpay.auth.forms import SignOutForm
from vcpay.health.services import workers_are_late
from vcpay.i18n import LANGUAGES, html_lang
from vcpay.main.forms import LanguageForm
from vcpay.people.permissions import ADMINS, Role, holds_any


@dataclass(frozen=True)
class NavigationLink:
    endpoint: str
    label: Any
    roles: frozenset[Role] | None  # None: everyone signed in
    also: tuple[str, ...] = ()  # other blueprints whose pages are in this section

    def is_current(self) -> bool:
        """Whether the page shown is in this link's section: a page of its blueprint (or of one
        it names), or one under its address (the routes of an app in a call, under /calls/,
        are in Calls)."""
        if not request.endpoint:
            return False
        if request.endpoint.split(".")[0] in (self.endpoint.split(".")[0], *self.also):
            return True
        section = url_for(self.endpoint)
        return section != "/" and request.path.startswith(section)


LINKS = (
    NavigationLink("main.home", _l("Home"), None),
    NavigationLink("calls.index", _l("Calls"), frozenset({Role.CLINICIAN})),
    NavigationLink("ledger.index", _l("Payments"), ADMINS | {Role.CLINICIAN}),
)
# The Configure menu: how a clinic is set up, in the words of the help article and the emails
# ("Configure", then "Client Payments"). The clinic's settings and team join it as they come.
CONFIGURE = (
    # A clinic's payouts and time zone are reached from its Client Payments page.
    NavigationLink("client_payments.index", _l("Client Payments"), ADMINS, also=("payouts",)),
    NavigationLink("teams.index", _l("Team"), ADMINS),
    NavigationLink("audit.index", _l("Audit log"), ADMINS),
)


def links_for(user, links: tuple[NavigationLink, ...] = LINKS) -> list[NavigationLink]:
    return [link for link in links if link.roles is None or holds_any(user, link.roles)]


def _current_locale() -> str:
    locale = get_locale()
    return str(locale) if locale else "en"


def navigation_context() -> dict[str, Any]:
    if not has_request_context():  # email and Jira text rendered by a worker
        return {}
    locale = _current_locale()
    context: dict[str, Any] = {
        "languages": LANGUAGES,
        "current_locale": locale,
        "html_lang": html_lang(locale),
        "language_form": LanguageForm(language=locale, next=request.full_path.rstrip("?")),
        "navigation": [],
        "configure": [],
        "configure_current": False,
        "show_worker_warning": False,
    }
    if current_user.is_authenticated:
        context["navigation"] = links_for(current_user)
        context["configure"] = links_for(current_user, CONFIGURE)
        context["configure_current"] = any(link.is_current() for link in context["configure"])
        context["sign_out_form"] = SignOutForm()
        # Admins rely on background work (requests, webhooks); tell them when it has stopped.
        context["show_worker_warning"] = holds_any(current_user, ADMINS) and workers_are_late()
    return context
