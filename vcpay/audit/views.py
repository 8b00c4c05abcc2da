"""The audit log page and its CSV export: read only. No route of vcpay edits or deletes an
entry. An organisation admin reads their organisation's entries, a clinic admin their
clinic's; anyone else with a role gets 403, and someone with none 404."""

from datetime import datetime

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask_login import current_user, login_required

from vcpay.audit.audit_csv import csv_chunks, file_name
from vcpay.audit.reading import (
    KINDS,
    PAGE_SIZE,
    AuditScope,
    audit_scope,
    entries,
    kind_of,
    people_in,
    position_of,
    read_filter,
)
from vcpay.errors import render_error
from vcpay.extensions import limiter
from vcpay.ledger import keyset
from vcpay.ledger.filters import FilterRefused, page_position
from vcpay.people.permissions import Role, holds_any

blueprint = Blueprint("audit", __name__, url_prefix="/audit")


def _readable_scope() -> AuditScope:
    scope = audit_scope(current_user)
    if not scope:
        abort(403 if current_user.is_active and holds_any(current_user, Role) else 404)
    return scope


@blueprint.route("/")
@login_required
def index():
    scope = _readable_scope()
    people = people_in(scope)
    try:
        audit = read_filter(scope, request.args, people)
        after = page_position(request.args.get("after", ""))
    except FilterRefused as refused:
        page = render_template(
            "audit/index.html",
            error=refused.message,
            args=request.args,
            people=people,
            kinds=KINDS,
        )
        return page, 400
    rows = entries(audit, after, PAGE_SIZE + 1)
    older = keyset.encode(position_of(rows[PAGE_SIZE - 1])) if len(rows) > PAGE_SIZE else None
    return render_template(
        "audit/index.html",
        audit=audit,
        args=audit.args,
        rows=rows[:PAGE_SIZE],
        older=older,
        first_page=after is None,
        people=people,
        kinds=KINDS,
        kind_of=kind_of,
    )


@blueprint.route("/export.csv")
@login_required
@limiter.limit("30 per minute")
def export():
    scope = _readable_scope()
    try:
        audit = read_filter(scope, request.args, people_in(scope))
    except FilterRefused as refused:
        return render_error(400, refused.message)
    response = Response(stream_with_context(csv_chunks(audit)), mimetype="text/csv")
    name = file_name(datetime.now(scope.zone).date())
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"  # names, emails and addresses
    return response
