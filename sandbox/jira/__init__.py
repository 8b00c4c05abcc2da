"""A local stand-in for Jira Cloud and Jira Service Management, spoken to over real HTTP.

It serves the subset of the platform API (/rest/api/2 and 3) and the servicedeskapi that
vcpay and the ``jira`` library use, an agent page for people, and ``/_sandbox`` controls for
tests (reset, call log, faults, search lag, clock). See ``app.create_jira_standin`` and
``server.start_jira_standin``; ``python -m sandbox.jira --help`` runs it as a process.
"""

from sandbox.jira.app import create_jira_standin
from sandbox.jira.server import start_jira_standin, stop_jira_standin
from sandbox.jira.settings import StandinSettings

__all__ = [
    "StandinSettings",
    "create_jira_standin",
    "start_jira_standin",
    "stop_jira_standin",
]
