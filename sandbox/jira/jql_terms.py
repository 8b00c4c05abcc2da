"""The kinds of JQL field (a choice, a person, text, a date) with the operators and values Jira
takes for each, and how dates and the functions ``now()``, ``startOfDay()`` and
``currentUser()`` are read. The site's own fields are in ``jql_fields``; the grammar in ``jql``.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sandbox.jira.clock import Millis, from_datetime, to_datetime
from sandbox.jira.records import Account, CustomerRequest

Predicate = Callable[[CustomerRequest], bool]
DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
RELATIVE_DATE = re.compile(r"^([+-]?)(\d+)([wdhm])$")
UNIT_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}
CURRENT_USER = "currentuser()"


class JqlError(ValueError):
    """JQL the stand-in cannot run; the message is what Jira would say."""


@dataclass(frozen=True)
class Context:
    """What evaluating a query needs besides the requests."""

    now: Millis
    time_zone: str
    account: Callable[[str], Account | None]
    caller: Account | None = None  # who searches: currentUser()


def unsupported(operator: str, field: str) -> JqlError:
    return JqlError(f"The operator '{operator}' is not supported by the '{field}' field.")


class ChoiceField:
    """A field compared by equality against a few names for each request's value."""

    def __init__(
        self,
        name: str,
        names_of: Callable[[CustomerRequest, Context], set[str]],
        valid: Callable[[str], bool],
        is_empty: Callable[[CustomerRequest], bool] = lambda r: False,
    ):
        self.name = name
        self.names_of = names_of
        self.valid = valid
        self.is_empty = is_empty

    def wanted(self, values: list[str], context: Context) -> set[str]:
        wanted = set()
        for value in values:
            if not self.valid(value):
                raise JqlError(f"The value '{value}' does not exist for the field '{self.name}'.")
            wanted.add(value.lower())
        return wanted

    def clause(self, operator: str, values: list[str], context: Context) -> Predicate:
        if operator not in ("=", "!=", "in", "not in"):
            raise unsupported(operator, self.name)
        wanted = self.wanted(values, context)
        negate = operator in ("!=", "not in")
        return lambda r: bool(self.names_of(r, context) & wanted) != negate

    def empty_clause(self, operator: str) -> Predicate:
        return lambda r: self.is_empty(r) == (operator == "is")


class OptionalField(ChoiceField):
    """A field a request may leave empty (labels, assignee). As in Jira, ``!=`` and ``NOT
    IN`` never match a request whose field is empty."""

    def clause(self, operator: str, values: list[str], context: Context) -> Predicate:
        matches = super().clause(operator, values, context)
        return lambda r: not self.is_empty(r) and matches(r)


class UserField(OptionalField):
    """A person: by account id or email address, or ``currentUser()``, who searches."""

    def wanted(self, values: list[str], context: Context) -> set[str]:
        people = set()
        for value in values:
            if value.lower() == CURRENT_USER:
                if context.caller is not None:
                    people.add(context.caller.account_id.lower())
            elif not value.strip() or value.endswith("()"):
                raise JqlError(f"The value '{value}' does not exist for the field '{self.name}'.")
            else:
                people.add(value.lower())
        return people


def user_names(account_id_of: Callable[[CustomerRequest], str | None]):
    def names_of(r: CustomerRequest, context: Context) -> set[str]:
        account_id = account_id_of(r)
        if account_id is None:
            return set()
        account = context.account(account_id)
        return lower(account_id, *([account.email] if account else []))

    return names_of


class TextField:
    def __init__(self, name: str, text_of: Callable[[CustomerRequest], str]):
        self.name = name
        self.text_of = text_of

    def clause(self, operator: str, values: list[str], context: Context) -> Predicate:
        if operator not in ("~", "!~"):
            raise unsupported(operator, self.name)
        needle = values[0].strip("*?").lower()
        negate = operator == "!~"
        return lambda r: (needle in self.text_of(r).lower()) != negate

    def empty_clause(self, operator: str) -> Predicate:
        return lambda r: (not self.text_of(r)) == (operator == "is")


class DateField:
    def __init__(self, name: str, moment_of: Callable[[CustomerRequest], Millis | None]):
        self.name = name
        self.moment_of = moment_of

    def clause(self, operator: str, values: list[str], context: Context) -> Predicate:
        compare = DATE_COMPARISONS.get(operator)
        if compare is None:
            raise unsupported(operator, self.name)
        limit = parse_date(values[0], self.name, context)

        def predicate(r: CustomerRequest) -> bool:
            moment = self.moment_of(r)
            return moment is not None and compare(moment, limit)

        return predicate

    def empty_clause(self, operator: str) -> Predicate:
        return lambda r: (self.moment_of(r) is None) == (operator == "is")


DATE_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def parse_date(value: str, field: str, context: Context) -> Millis:
    """A JQL date: absolute ones are read in the searching user's time zone."""
    text = value.strip()
    if text.lower() == "now()":
        return context.now
    if text.lower() == "startofday()":
        today = to_datetime(context.now, context.time_zone)
        return from_datetime(today.replace(hour=0, minute=0, second=0, microsecond=0))
    if relative := RELATIVE_DATE.match(text):
        sign = -1 if relative.group(1) == "-" else 1
        return context.now + sign * int(relative.group(2)) * UNIT_MS[relative.group(3)]
    if text.isdigit():
        return int(text)  # Jira reads a bare number as epoch milliseconds
    for pattern in DATE_FORMATS:
        try:
            naive = datetime.strptime(text, pattern)  # noqa: DTZ007 - zone attached below
        except ValueError:
            continue
        return from_datetime(naive.replace(tzinfo=ZoneInfo(context.time_zone)))
    raise JqlError(
        f"Date value '{value}' for field '{field}' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', "
        "or a period format e.g. '-5d', '4w', '-2h', '-5m'."
    )


def lower(*names: str) -> set[str]:
    return {n.lower() for n in names}
