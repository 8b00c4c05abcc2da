"""Daily takings as a bar chart in inline SVG, drawn here: no script, nothing fetched.

Labelled for people who cannot see it too: the SVG has a title and a description that
states the range, the total and the best day; each bar has its own title (day and amount).
"""

from decimal import Decimal

from babel import Locale
from babel.numbers import format_currency
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape

from vcpay.clinic_clocks import reader_day
from vcpay.ledger.takings import DailyTakings
from vcpay.payments.amounts import format_amount

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 16, 44
TICKS = 4
MOST_LABELS = 10


def _locale() -> Locale:
    """The reader's locale as Babel's object: given its name instead, Babel parses the name
    again for each of a year's 366 bars."""
    return get_locale() or Locale.parse("en")


def _dollars(cents: int) -> str:
    """Whole dollars for the axis: A$1,200."""
    return format_currency(
        Decimal(cents) / 100, "AUD", format="¤#,##0", locale=_locale(), currency_digits=False
    )


def axis_top(most: int) -> int:
    """A round number of cents at or above ``most``, so the ticks read as round amounts."""
    if most <= 0:
        return 100_00
    step = 1
    while step * 10 <= most:
        step *= 10
    for multiple in (1, 2, 2.5, 5, 10):
        if step * multiple >= most:
            return int(step * multiple)
    return step * 10


def _describe(takings: DailyTakings) -> str:
    days = takings.days()
    total = sum(amount for _day, amount in days)
    best_day, best = max(days, key=lambda pair: pair[1])
    first, last = (reader_day(d) for d in (days[0][0], days[-1][0]))
    if total == 0:
        return _("No payments were taken from %(first)s to %(last)s.", first=first, last=last)
    return _(
        "From %(first)s to %(last)s: %(total)s in all; the best day was %(day)s with %(best)s.",
        first=first,
        last=last,
        total=format_amount(total),
        day=reader_day(best_day),
        best=format_amount(best),
    )


def _bars(days, top: int) -> list[str]:
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / len(days)
    bar = max(slot * 0.8, 1)
    parts = []
    label_every = max(1, -(-len(days) // MOST_LABELS))
    for index, (day, amount) in enumerate(days):
        height = plot_height * amount / top
        x = LEFT + index * slot + (slot - bar) / 2
        name = escape(f"{reader_day(day)}: {format_amount(amount)}")
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_height - height:.1f}" '
            f'width="{bar:.1f}" height="{height:.1f}"><title>{name}</title></rect>'
        )
        if index % label_every == 0:
            label = escape(reader_day(day, "d MMM"))
            parts.append(
                f'<text class="x-label" x="{x + bar / 2:.1f}" y="{HEIGHT - BOTTOM + 18}" '
                f'text-anchor="middle">{label}</text>'
            )
    return parts


def _axis(top: int) -> list[str]:
    plot_height = HEIGHT - TOP - BOTTOM
    parts = []
    for tick in range(TICKS + 1):
        value = top * tick // TICKS
        y = TOP + plot_height - plot_height * tick / TICKS
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="y-label" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_dollars(value))}</text>"
        )
    return parts


def takings_chart(takings: DailyTakings, chart_id: str = "takings") -> Markup:
    days = takings.days()
    top = axis_top(max(amount for _day, amount in days))
    title = escape(_("Daily takings (A$), by the day each payment was requested"))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{title}</title>',
        f'<desc id="{chart_id}-desc">{escape(_describe(takings))}</desc>',
        *_axis(top),
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}"/>',
        *_bars(days, top),
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704  # nosec B704  # every text above is escaped
