"""The patient's side of a call: join with the link and a name, then follow the call live
with what its apps show the patient (vcpay.calls.access says who reaches what)."""

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_babel import get_locale

from vcpay.calls.access import call_for_link, joined_participant, remember_joined
from vcpay.calls.apps import call_apps
from vcpay.calls.events import PATIENT_AUDIENCES, latest_event_id
from vcpay.calls.forms import JoinForm
from vcpay.calls.models import Call, Participant
from vcpay.calls.services import guest_link_works, join_as_patient
from vcpay.calls.stream import stream_response
from vcpay.extensions import db, limiter

blueprint = Blueprint("guest", __name__, url_prefix="/join")


@blueprint.route("/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def join(token: str):
    call = call_for_link(token)
    if (me := joined_participant(call)) is not None:
        return _screen(call, me)
    form = JoinForm()
    if not call.is_open:
        return render_template("guest/message.html", call=call, ended=True)
    if form.validate_on_submit():
        patient = join_as_patient(call, form.display_name.data, str(get_locale()))
        db.session.commit()
        remember_joined(call, patient)
        return redirect(url_for("guest.join", token=token), code=303)
    notices = call_apps().join_notices(call)
    page = render_template("guest/join.html", call=call, form=form, notices=notices)
    return page, 400 if form.errors else 200


def _screen(call: Call, me: Participant):
    if me.locale != (locale := str(get_locale())):  # the patient chose another language
        me.locale = locale
        db.session.commit()
    if (first := call_apps().gate(call, me)) is not None:  # a fee to pay before the call
        return redirect(first, code=303)
    return render_template(
        "guest/call.html",
        call=call,
        me=me,
        apps=call_apps().for_patient(call, me),
        last_event_id=latest_event_id(call.id),
    )


@blueprint.route("/<token>/panel")
def panel(token: str):
    call = call_for_link(token)
    me = joined_participant(call)
    if me is None or call_apps().gate(call, me) is not None:
        abort(403)
    apps = call_apps().for_patient(call, me)
    return render_template("guest/_panel.html", call=call, apps=apps)


@blueprint.route("/<token>/events")
def events(token: str):
    call = call_for_link(token)
    me = joined_participant(call)
    if me is None:
        abort(403)
    return stream_response(
        call, PATIENT_AUDIENCES, guest_link_works, viewer=f"guest:{me.id}", access="guest-link"
    )
