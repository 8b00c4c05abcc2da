"""The subset of JQL that vcpay and its tests use, evaluated over customer requests.

Supported: ``project``, ``issuetype``, ``key``/``issuekey``/``id``, ``status``,
``statusCategory``, ``resolution``, ``reporter``, ``"Request Type"`` (also ``"Customer Request
Type"`` and ``cf[10010]``) with ``= != IN NOT IN`` (and ``IS [NOT] EMPTY`` for resolution);
``summary``, ``description``, ``text`` with ``~ !~`` (case-insensitive substring); ``updated``,
``created``, ``resolved`` with ``= != > >= < <=``; ``AND``, ``OR``, ``NOT``, parentheses;
``ORDER BY`` ``updated``, ``created``, ``resolved``, ``key``, ``summary``, ``status``. Anything
else is refused with a message, as Jira refuses what it cannot parse.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sandbox.jira import catalog
from sandbox.jira.clock import Millis, from_datetime, to_datetime
from sandbox.jira.records import Account, CustomerRequest

Predicate = Callable[[CustomerRequest], bool]
KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
OPERATORS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
RELATIVE_DATE = re.compile(r"^([+-]?)(\d+)([wdhm])$")
UNIT_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}
ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")


class JqlError(ValueError):
    """JQL the stand-in cannot run; the message is what Jira would say."""


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "string", "op", "(", ")", ","
    text: str

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


@dataclass(frozen=True)
class Context:
    """What evaluating a query needs besides the requests."""

    now: Millis
    time_zone: str
    account: Callable[[str], Account | None]


@dataclass(frozen=True)
class Query:
    where: Predicate | None
    order: tuple[tuple[str, bool], ...]  # (field, descending)

    @property
    def bounded(self) -> bool:
        return self.where is not None

    def select(self, requests: list[CustomerRequest]) -> list[CustomerRequest]:
        found = [r for r in requests if self.where is None or self.where(r)]
        found.sort(key=lambda r: r.number)  # the last tie-breaker
        for field, descending in reversed(self.order):
            found.sort(key=SORT_KEYS[field], reverse=descending)
        return found


def tokenize(text: str) -> list[Token]:
    tokens, i = [], 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "\"'":
            value, i = _quoted(text, i)
            tokens.append(Token("string", value))
        elif char in "(),":
            tokens.append(Token(char, char))
            i += 1
        elif op := next((op for op in OPERATORS if text.startswith(op, i)), None):
            tokens.append(Token("op", op))
            i += len(op)
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in "\"'(),=!~<>":
                i += 1
            if start == i:
                raise JqlError(f"Error in the JQL Query: the character '{char}' is reserved.")
            tokens.append(Token("word", text[start:i]))
    return tokens


def _quoted(text: str, start: int) -> tuple[str, int]:
    quote, chars, i = text[start], [], start + 1
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            i += 2
        elif text[i] == quote:
            return "".join(chars), i + 1
        else:
            chars.append(text[i])
            i += 1
    raise JqlError("Error in the JQL Query: the quoted string is not closed.")


class Parser:
    def __init__(self, text: str, context: Context):
        self.tokens = tokenize(text)
        self.position = 0
        self.context = context

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def next(self, expected: str) -> Token:
        token = self.peek()
        if token is None:
            raise JqlError(f"Error in the JQL Query: expecting {expected} but reached the end.")
        self.position += 1
        return token

    def accept(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.is_keyword(*words):
            self.position += 1
            return True
        return False

    def parse(self) -> Query:
        where = None
        token = self.peek()
        if token is not None and not token.is_keyword("order"):
            where = self.expression()
        order: tuple[tuple[str, bool], ...] = (("created", True), ("key", True))
        if self.accept("order"):
            if not self.accept("by"):
                raise JqlError("Error in the JQL Query: expecting 'by' after 'order'.")
            order = self.ordering()
        if self.peek() is not None:
            raise JqlError(f"Error in the JQL Query: unexpected '{self.peek().text}'.")
        return Query(where, order)

    def expression(self) -> Predicate:
        parts = [self.conjunction()]
        while self.accept("or", "||"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda r: any(p(r) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.accept("and", "&&"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else lambda r: all(p(r) for p in parts)

    def unary(self) -> Predicate:
        if self.accept("not"):
            inner = self.unary()
            return lambda r: not inner(r)
        token = self.peek()
        if token is not None and token.kind == "(":
            self.position += 1
            inner = self.expression()
            if self.next("')'").kind != ")":
                raise JqlError("Error in the JQL Query: expecting ')'.")
            return inner
        return self.clause()

    def clause(self) -> Predicate:
        token = self.next("a field name")
        if token.kind not in ("word", "string") or (
            token.kind == "word" and token.text.lower() in KEYWORDS
        ):
            raise JqlError(
                f"Error in the JQL Query: expecting a field name but got '{token.text}'."
            )
        field = resolve_field(token.text)
        operator = self.operator()
        if operator in ("is", "is not"):
            if not self.accept("empty", "null"):
                raise JqlError("Error in the JQL Query: expecting EMPTY or NULL after IS.")
            return field.empty_clause(operator)
        values = self.values() if operator in ("in", "not in") else [self.value()]
        return field.clause(operator, values, self.context)

    def operator(self) -> str:
        token = self.next("an operator")
        if token.kind == "op":
            return token.text
        if token.is_keyword("in"):
            return "in"
        if token.is_keyword("not") and self.accept("in"):
            return "not in"
        if token.is_keyword("is"):
            return "is not" if self.accept("not") else "is"
        raise JqlError(f"Error in the JQL Query: expecting an operator but got '{token.text}'.")

    def values(self) -> list[str]:
        if self.next("'('").kind != "(":
            raise JqlError("Error in the JQL Query: expecting '(' after IN.")
        values = [self.value()]
        while True:
            token = self.next("')'")
            if token.kind == ")":
                return values
            if token.kind != ",":
                raise JqlError("Error in the JQL Query: expecting ',' or ')'.")
            values.append(self.value())

    def value(self) -> str:
        token = self.next("a value")
        if token.kind == "string":
            return token.text
        if token.kind != "word" or token.text.lower() in KEYWORDS - {"empty", "null"}:
            raise JqlError(f"Error in the JQL Query: expecting a value but got '{token.text}'.")
        following = self.peek()
        if following is not None and following.kind == "(":  # a function such as now()
            self.position += 1
            if self.next("')'").kind != ")":
                raise JqlError("Error in the JQL Query: functions here take no arguments.")
            return token.text + "()"
        return token.text

    def ordering(self) -> tuple[tuple[str, bool], ...]:
        order = []
        while True:
            token = self.next("a field to order by")
            name = SORT_FIELDS.get(token.text.lower())
            if name is None:
                raise JqlError(f"Not able to sort using field '{token.text}'.")
            descending = False
            if self.accept("desc"):
                descending = True
            else:
                self.accept("asc")
            order.append((name, descending))
            if not (self.peek() and self.peek().kind == ","):
                return tuple(order)
            self.position += 1


# -- fields ---------------------------------------------------------------------------------


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

    def clause(self, operator: str, values: list[str], context: Context) -> Predicate:
        if operator not in ("=", "!=", "in", "not in"):
            raise JqlError(
                f"The operator '{operator}' is not supported by the '{self.name}' field."
            )
        wanted = set()
        for value in values:
            if not self.valid(value):
                raise JqlError(f"The value '{value}' does not exist for the field '{self.name}'.")
            wanted.add(value.lower())
        negate = operator in ("!=", "not in")
        return lambda r: bool(self.names_of(r, context) & wanted) != negate

    def empty_clause(self, operator: str) -> Predicate:
        return lambda r: self.is_empty(r) == (operator == "is")


class TextField:
    def __init__(self, name: str, text_of: Callable[[CustomerRequest], str]):
        self.name = name
        self.text_of = text_of

    def clause(self, operator: str, values: list[str], context: Context) -> Predicate:
        if operator not in ("~", "!~"):
            raise JqlError(
                f"The operator '{operator}' is not supported by the '{self.name}' field."
            )
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
            raise JqlError(
                f"The operator '{operator}' is not supported by the '{self.name}' field."
            )
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


def _lower(*names: str) -> set[str]:
    return {n.lower() for n in names}


def _status(r: CustomerRequest) -> catalog.Status:
    return catalog.STATUSES[r.status]


def _request_type_names(rt: catalog.RequestType) -> set[str]:
    return _lower(rt.id, rt.name, f"{rt.name} ({catalog.PAYMENT_DESK.project_key})")


def _reporter_names(r: CustomerRequest, context: Context) -> set[str]:
    account = context.account(r.reporter_id)
    return _lower(r.reporter_id, *([account.email] if account else []))


def _resolution_names(r: CustomerRequest, _context: Context) -> set[str]:
    if r.resolution is None:
        return {"unresolved"}  # Jira's name for "no resolution" in JQL
    return _lower(r.resolution, catalog.RESOLUTIONS[r.resolution].id)


ALL_STATUS_NAMES = set().union(*(_lower(s.name, s.id) for s in catalog.STATUSES.values()))
ALL_CATEGORY_NAMES = set().union(
    *(_lower(c.key, c.name, str(c.id)) for c in catalog.STATUS_CATEGORIES)
)
ALL_RESOLUTION_NAMES = set().union(
    *(_lower(r.name, r.id) for r in catalog.RESOLUTIONS.values())
) | {"unresolved"}
ALL_REQUEST_TYPE_NAMES = set().union(*(_request_type_names(rt) for rt in catalog.REQUEST_TYPES))
DESK = catalog.PAYMENT_DESK
ISSUE_TYPE = catalog.SERVICE_REQUEST_WITH_APPROVALS

FIELDS = {
    "project": ChoiceField(
        "project",
        lambda r, c: _lower(DESK.project_key, DESK.project_id, DESK.project_name),
        lambda v: v.lower() in _lower(DESK.project_key, DESK.project_id, DESK.project_name),
    ),
    "issuetype": ChoiceField(
        "issuetype",
        lambda r, c: _lower(ISSUE_TYPE.id, ISSUE_TYPE.name),
        lambda v: v.lower() in _lower(ISSUE_TYPE.id, ISSUE_TYPE.name),
    ),
    "key": ChoiceField(
        "key",
        lambda r, c: _lower(r.key, r.issue_id),
        lambda v: bool(ISSUE_KEY.match(v)) or v.isdigit(),
    ),
    "status": ChoiceField(
        "status",
        lambda r, c: _lower(r.status, _status(r).id),
        lambda v: v.lower() in ALL_STATUS_NAMES,
    ),
    "statuscategory": ChoiceField(
        "statusCategory",
        lambda r, c: _lower(
            _status(r).category.key, _status(r).category.name, str(_status(r).category.id)
        ),
        lambda v: v.lower() in ALL_CATEGORY_NAMES,
    ),
    "resolution": ChoiceField(
        "resolution",
        _resolution_names,
        lambda v: v.lower() in ALL_RESOLUTION_NAMES,
        is_empty=lambda r: r.resolution is None,
    ),
    "reporter": ChoiceField("reporter", _reporter_names, lambda v: bool(v.strip())),
    "request type": ChoiceField(
        "Request Type",
        lambda r, c: next(
            _request_type_names(rt) for rt in catalog.REQUEST_TYPES if rt.id == r.request_type_id
        ),
        lambda v: v.lower() in ALL_REQUEST_TYPE_NAMES,
    ),
    "summary": TextField("summary", lambda r: r.summary),
    "description": TextField("description", lambda r: r.description),
    "text": TextField(
        "text", lambda r: "\n".join([r.summary, r.description, *(c.body for c in r.comments)])
    ),
    "updated": DateField("updated", lambda r: r.updated),
    "created": DateField("created", lambda r: r.created),
    "resolved": DateField("resolved", lambda r: r.resolved),
}
FIELD_ALIASES = {
    "type": "issuetype",
    "issuekey": "key",
    "id": "key",
    "issue": "key",
    "customer request type": "request type",
    "cf[10010]": "request type",
    "updateddate": "updated",
    "createddate": "created",
    "resolutiondate": "resolved",
}
SORT_FIELDS = {
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
    "resolved": "resolved",
    "resolutiondate": "resolved",
    "key": "key",
    "issuekey": "key",
    "id": "key",
    "summary": "summary",
    "status": "status",
}
SORT_KEYS: dict[str, Callable[[CustomerRequest], object]] = {
    "updated": lambda r: r.updated,
    "created": lambda r: r.created,
    "resolved": lambda r: r.resolved if r.resolved is not None else float("inf"),
    "key": lambda r: r.number,  # PAY-2 before PAY-10
    "summary": lambda r: r.summary.lower(),
    "status": lambda r: r.status.lower(),
}


def resolve_field(name: str):
    lowered = name.strip().lower()
    field = FIELDS.get(FIELD_ALIASES.get(lowered, lowered))
    if field is None:
        raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
    return field


def parse_jql(text: str, context: Context) -> Query:
    return Parser(text or "", context).parse()
