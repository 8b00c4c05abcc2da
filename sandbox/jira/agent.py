"""The service-desk agent's pages: people in the demo approve, decline or move requests here.

Plain forms that post and redirect back (post/redirect/get). The agent is the approver
configured in the settings; no sign-in, as this is a sandbox.
"""

from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sandbox.jira import catalog
from sandbox.jira.clock import readable
from sandbox.jira.errors import Refusal
from sandbox.jira.records import CustomerRequest
from sandbox.jira.runtime import standin

agent = Blueprint("agent", __name__)

LISTED = 200  # the newest ones; benchmarks may create thousands


@dataclass(frozen=True)
class RequestRow:
    """What the pages show of one request."""

    request: CustomerRequest
    reporter: str
    decision: str
    status_category: str
    transitions: list[catalog.Transition]
    created: str
    updated: str

    @property
    def pending(self) -> bool:
        return self.decision == "pending"


def _row(found: CustomerRequest) -> RequestRow:
    running = standin()
    zone = running.settings.time_zone
    reporter = running.state.account(found.reporter_id)
    return RequestRow(
        request=found,
        reporter=f"{reporter.display_name} <{reporter.email}>" if reporter else found.reporter_id,
        decision=found.approvals[0].final_decision if found.approvals else "none",
        status_category=catalog.STATUSES[found.status].category.name,
        transitions=catalog.transitions_from(found.status),
        created=readable(found.created, zone),
        updated=readable(found.updated, zone),
    )


def _back(default: str):
    """Back where the form was, but only to a page of this site."""
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//"):
        target = default
    return redirect(target, code=303)


@agent.get("/servicedesk/agent")
@agent.get("/")  # registered first, so links name "/"
def queue():
    found = sorted(standin().state.requests(), key=lambda r: r.number, reverse=True)
    return render_template(
        "jira_standin/queue.html",
        rows=[_row(r) for r in found[:LISTED]],
        total=len(found),
        agent=standin().state.agent,
    )


@agent.get("/browse/<key>")
def detail(key: str):
    try:
        found = standin().state.request(key)
    except Refusal:
        return render_template("jira_standin/missing.html", key=key), 404
    state = standin().state
    comments = [
        (c, state.account(c.author_id), readable(c.created, standin().settings.time_zone))
        for c in found.comments
    ]
    return render_template(
        "jira_standin/detail.html",
        row=_row(found),
        approval=found.approvals[0] if found.approvals else None,
        approver=state.agent,
        comments=comments,
    )


@agent.post("/agent/requests/<key>/decision")
def decide(key: str):
    state = standin().state
    decision = request.form.get("decision", "")
    try:
        found = state.request(key)
        state.decide(
            key, found.approvals[0].id, state.agent, decision, request.form.get("reason", "")
        )
        flash(f"{found.key}: {'approved' if decision == 'approve' else 'declined'}.", "success")
    except (Refusal, IndexError) as refused:
        flash(f"{key}: {getattr(refused, 'message', 'no approval to answer')}", "error")
    return _back(url_for("agent.queue"))


@agent.post("/agent/requests/<key>/transition")
def transition(key: str):
    state = standin().state
    try:
        moved = state.run_transition(key, request.form.get("transition", ""), state.agent)
        flash(f"{moved.key} is now {moved.status}.", "success")
    except Refusal as refused:
        flash(f"{key}: {refused.message}", "error")
    return _back(url_for("agent.queue"))


@agent.post("/agent/requests/<key>/comment")
def comment(key: str):
    state = standin().state
    internal = request.form.get("internal") == "yes"
    try:
        state.add_comment(key, state.agent, request.form.get("body", ""), public=not internal)
        flash(f"{key.upper()}: {'internal note' if internal else 'reply'} added.", "success")
    except Refusal as refused:
        flash(f"{key}: {refused.message}", "error")
    return _back(url_for("agent.detail", key=key))
