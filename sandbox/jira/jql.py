"""The subset of JQL that vcpay, its tests and a person at the agent page use, evaluated over
customer requests.

Clauses: every field ``/rest/api/2/field`` lists, under each of its clause names (see
``jql_fields``), with ``= != IN NOT IN`` for values, ``~ !~`` for text (a case-insensitive
substring), ``= != > >= < <=`` for dates, ``IS [NOT] EMPTY``; ``AND``, ``OR``, ``NOT``,
parentheses; ``ORDER BY`` ``updated``, ``created``, ``resolved``, ``key``, ``summary``,
``status``. Functions: ``now()``, ``startOfDay()``, ``currentUser()``. What else Jira takes
(history operators such as ``WAS`` and ``CHANGED``, other functions, ordering by other fields)
is refused with a message, as Jira refuses what it cannot parse; sandbox/README.md lists it.
"""

from dataclasses import dataclass

from sandbox.jira.jql_fields import SORT_FIELDS, SORT_KEYS, resolve_field
from sandbox.jira.jql_terms import Context, JqlError, Predicate
from sandbox.jira.records import CustomerRequest

__all__ = ["Context", "JqlError", "Query", "parse_jql"]
KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
OPERATORS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
FUNCTIONS = ("now()", "startofday()", "currentuser()")


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "string", "op", "(", ")", ","
    text: str

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


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
            if f"{token.text.lower()}()" not in FUNCTIONS:
                raise JqlError(f"Unable to find JQL function '{token.text}()'.")
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


def parse_jql(text: str, context: Context) -> Query:
    return Parser(text or "", context).parse()
