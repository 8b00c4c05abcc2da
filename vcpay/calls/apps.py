"""Apps & Tools: what the call screens host, without knowing any of it.

An app (Request Payment today, a form such as Bulk Billing Consent tomorrow) gives its key and
name, the panels it adds to the clinician's screen and to the patient's page (a template each,
with a function that says what it shows), and whether it is there for this call and this
person. The factory adds each app to the Flask application; the call screens render the panels
of the apps added, in that order, each with its own context and nothing of the screen's but
the call. An app may also add fields to the form that starts a call, and send a patient
somewhere first (a fee to pay) before they see the call.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, session
from markupsafe import Markup

from vcpay.calls.models import Call, Participant
from vcpay.people.models import Clinic, User

EXTENSION = "call_apps"
TOOL_STATE_KEY = "call_tool_state"
START_FORM_KEY = "start_call_form"
# Who is looking: the clinician (a signed-in person) or the patient (a participant who joined).
Person = User | Participant


def _always(call: Call, person: Person) -> bool:
    return True


@dataclass(frozen=True)
class Panel:
    """A template, and the function that gives it what it shows: ``context(call, person)``,
    and for a tool also the state its own view hands back (a form refused, say)."""

    template: str
    context: Callable[..., dict[str, Any]]


class CallNotPrepared(Exception):
    """An app refused what was entered for it on the form that starts a call: no call is made.
    ``field`` names the form field at fault, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class StartFields:
    """Fields an app adds to the form that starts a call: a template, the function that gives
    it what it shows in a clinic (``context(clinic, user)``, None where it is not offered), and
    ``prepare(call, user, sent)``, which takes what was sent once the call is made, in the same
    transaction, and raises ``CallNotPrepared`` to refuse it. The template is also given
    ``sent`` (the values of its ``fields`` as sent, when the form comes back refused) and
    ``refused`` (the field at fault, and why)."""

    template: str
    context: Callable[[Clinic, User], dict[str, Any] | None]
    prepare: Callable[[Call, User, Mapping[str, str]], None]
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallApp:
    key: str  # its section's id on the clinician's screen, and the anchor its views return to
    name: Any  # its heading in Apps & Tools
    tool: Panel | None = None  # the clinician's, in the Apps & Tools drawer
    staff_panel: Panel | None = None  # the clinician's, in the live part of the screen
    patient_panel: Panel | None = None  # the patient's, in the live part of their page
    # Beside each person in the clinician's list of who is in the call, with the staff
    # panel's context and ``participant``.
    beside_participant: str | None = None
    available: Callable[[Call, Person], bool] = _always
    start_fields: StartFields | None = None
    # Where a patient who joined must go before the open call's page (a fee to pay), or None.
    patient_gate: Callable[[Call, Participant], str | None] | None = None
    # What the page that asks a patient for their name tells them first, or None.
    join_notice: Callable[[Call], str | None] | None = None


@dataclass
class ShownApp:
    """An app on one screen: its panels' contexts, each worked out once per page."""

    app: CallApp
    call: Call
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def render(self, part: str, **extra: Any) -> Markup:
        """One of the app's panels ("tool", "staff_panel", "patient_panel") or
        "beside_participant"; nothing if the app has no such part."""
        if part == "beside_participant":
            template, context = self.app.beside_participant, self.contexts.get("staff_panel")
        else:
            panel = getattr(self.app, part)
            template, context = (panel.template, self.contexts.get(part)) if panel else (None, None)
        if template is None or context is None:
            return Markup("")
        html = current_app.jinja_env.get_template(template).render(
            call=self.call, **context, **extra
        )
        return Markup(html)  # noqa: S704  # nosec B704  # the template escaped it, as pages do


class CallApps:
    """The apps of one Flask application, in the order they were added."""

    def __init__(self) -> None:
        self._apps: dict[str, CallApp] = {}

    def add(self, app: CallApp) -> None:
        if app.key in self._apps:
            raise ValueError(f"{app.key} is already in Apps & Tools")
        self._apps[app.key] = app

    def __iter__(self) -> Iterator[CallApp]:
        return iter(self._apps.values())

    def for_staff(
        self, call: Call, user: User, state: dict[str, dict] | None = None, tools: bool = True
    ) -> list[ShownApp]:
        """The apps on the clinician's screen; ``tools`` for the whole screen, not only its
        live part. ``state`` holds, by app key, what an app's view hands its tool."""
        shown = []
        for app in self._available(call, user):
            contexts = {}
            if app.staff_panel is not None:
                contexts["staff_panel"] = app.staff_panel.context(call, user)
            if tools and app.tool is not None:
                contexts["tool"] = app.tool.context(call, user, (state or {}).get(app.key, {}))
            shown.append(ShownApp(app, call, contexts))
        return shown

    def for_patient(self, call: Call, patient: Participant) -> list[ShownApp]:
        return [
            ShownApp(app, call, {"patient_panel": app.patient_panel.context(call, patient)})
            for app in self._available(call, patient)
            if app.patient_panel is not None
        ]

    def start_fields(self, clinic: Clinic, user: User, kept: dict | None = None) -> Markup:
        """The apps' fields on the form that starts a call in ``clinic``; ``kept`` is what
        ``keep_start_form`` kept of a refused form, for this clinic."""
        kept = kept or {}
        sent, refused = kept.get("values") or {}, kept.get("refused") or {}
        parts = []
        for app in self:
            fields = app.start_fields
            context = fields.context(clinic, user) if fields is not None else None
            if context is not None:
                template = current_app.jinja_env.get_template(fields.template)
                parts.append(template.render(clinic=clinic, sent=sent, refused=refused, **context))
        return Markup("".join(parts))  # noqa: S704  # nosec B704  # each template escaped it

    def start_field_names(self) -> list[str]:
        return [name for app in self if app.start_fields for name in app.start_fields.fields]

    def prepare(self, call: Call, user: User, sent: Mapping[str, str]) -> None:
        """Each app takes its fields of the form that started ``call``; ``CallNotPrepared``
        from any of them refuses the call."""
        for app in self:
            if app.start_fields is not None:
                app.start_fields.prepare(call, user, sent)

    def gate(self, call: Call, patient: Participant) -> str | None:
        """Where the patient must go before they see the call, if anywhere."""
        if not call.is_open:
            return None
        for app in self:
            if app.patient_gate is not None and (address := app.patient_gate(call, patient)):
                return address
        return None

    def join_notices(self, call: Call) -> list[str]:
        """What the apps tell a patient before they give their name (a fee to pay first)."""
        notices = (app.join_notice(call) for app in self if app.join_notice is not None)
        return [notice for notice in notices if notice]

    def _available(self, call: Call, person: Person) -> list[CallApp]:
        return [app for app in self if app.available(call, person)]


def call_apps(app: Flask | None = None) -> CallApps:
    app = app or current_app
    return app.extensions.setdefault(EXTENSION, CallApps())


def add_call_app(app: Flask, call_app: CallApp) -> None:
    """Put an app in the Apps & Tools of this application's calls (from the factory)."""
    call_apps(app).add(call_app)


def keep_tool_state(call: Call, app_key: str, state: dict[str, Any]) -> None:
    """What an app's view refused (the values sent, why), kept for the call screen it
    redirects to: the address stays the screen's, and a reload sends nothing again.
    ``state`` must be plain data; it rides in the signed session cookie until shown."""
    session[TOOL_STATE_KEY] = {"call": call.id, "app": app_key, "state": state}


def keep_start_form(clinic: Clinic, sent: Mapping[str, str], refused: CallNotPrepared) -> None:
    """The start form an app refused, as sent, with why: shown again once, for ``clinic``."""
    names = ["title", *call_apps().start_field_names()]
    values = {name: str(sent.get(name, ""))[:200] for name in names}
    why = {"field": refused.field, "message": refused.message}
    session[START_FORM_KEY] = {"clinic": clinic.id, "values": values, "refused": why}


def take_start_form() -> dict[str, Any]:
    """What ``keep_start_form`` kept (its ``clinic``, ``values``, ``refused``), once."""
    kept = session.pop(START_FORM_KEY, None)
    return kept if isinstance(kept, dict) else {}


def take_tool_state(call: Call) -> dict[str, dict[str, Any]] | None:
    """The state kept for this call's screen, by app key, once; None if there is none."""
    kept = session.get(TOOL_STATE_KEY)
    if not isinstance(kept, dict) or kept.get("call") != call.id:
        return None
    session.pop(TOOL_STATE_KEY)
    return {str(kept.get("app")): dict(kept.get("state") or {})}
