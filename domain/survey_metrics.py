"""Hour-by-hour and day-by-day survey figures: bucket ids, counter fields, rows, tables.

Pure functions shared by the worker (which HINCRBYs the counters into Redis)
and `cxt report` (which reads them back and prints rows).

Buckets.  A survey is counted in the UTC hour of its `occurred_at`, whenever it
arrives: hour ids are "YYYYMMDDHH" (e.g. "2026112210"), day ids "YYYYMMDD".

Counter fields.  One hash per bucket; each field name encodes the dimensions
and the metric, joined by the ASCII unit separator (\\x1f):

    "<contact channel>\\x1f<queue>\\x1f<agent>\\x1f<metric>"  ->  integer

so any combination of channel / queue / agent filters is a sum over fields.
A missing dimension value is stored as "-".  Metrics per survey:

    n     1                                   (responses)
    b2    1 when bottom-2-box                 (score <= scale_min + 1)
    t2    1 when top-2-box                    (score >= scale_max - 1)
    sum   the raw score                       (mean score on the survey's own scale)
    norm  round(10000 * (score - min) / (max - min))
          the score on a common 0..1 scale, in 1/10000ths, so a mean across
          surveys with different scales (1-5 next to 0-10) still means something

Only non-zero increments are returned, so a survey costs at most five HINCRBYs.
On a scale with fewer than four points the two boxes overlap (on 1..3 a 2 is
both bottom-2 and top-2); the contract's scales all have five or more points.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from domain.surveys import is_bottom_2_box

SEP = "\x1f"
MISSING = "-"
METRICS = ("n", "b2", "t2", "sum", "norm")
NORM_UNIT = 10_000  # `norm` is stored in 1/10000ths of the scale

# A bucket hash as redis-py returns it: bytes, or str with decode_responses=True.
Counters = Mapping[str, int | str] | Mapping[bytes, int | bytes]

# The longest spans a report covers (the HTTP API's caps too): 31 days by hour,
# 400 days by day.  They also keep a span clear of datetime's year-1 limit.
MAX_HOURS = 24 * 31
MAX_DAYS = 400

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


# --------------------------------------------------------------------------- buckets


def hour_of(occurred_ms: int) -> str:
    """The UTC hour bucket id ("YYYYMMDDHH") of an epoch-milliseconds timestamp."""
    # Once per contact on the worker's hot path; a batch spans a few hours at most.
    return _hour(occurred_ms // 3_600_000)


@lru_cache(maxsize=4096)
def _hour(hours: int) -> str:
    return datetime.fromtimestamp(hours * 3600, tz=UTC).strftime("%Y%m%d%H")


def day_of(occurred_ms: int) -> str:
    """The UTC day bucket id ("YYYYMMDD") of an epoch-milliseconds timestamp."""
    return hour_of(occurred_ms)[:8]


def hours_back(now: datetime, hours: int) -> list[str]:
    """The last `hours` hour ids, oldest first, ending with the hour `now` is in."""
    _require_span(hours, "hours", MAX_HOURS)
    current = _utc(now).replace(minute=0, second=0, microsecond=0)
    return [(current - i * _HOUR).strftime("%Y%m%d%H") for i in range(hours - 1, -1, -1)]


def days_back(now: datetime, days: int) -> list[str]:
    """The last `days` day ids, oldest first, ending with today (UTC)."""
    _require_span(days, "days", MAX_DAYS)
    today = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return [(today - i * _DAY).strftime("%Y%m%d") for i in range(days - 1, -1, -1)]


def hours_of_day(day: str) -> list[str]:
    """The 24 hour ids of a day id."""
    if len(day) != 8 or not day.isdigit():
        raise ValueError(f"day id must be YYYYMMDD (got {day!r})")
    return [f"{day}{hour:02d}" for hour in range(24)]


def period_label(bucket: str) -> str:
    """"2026112210" -> "2026-11-22 10:00"; "20261122" -> "2026-11-22"."""
    date = f"{bucket[:4]}-{bucket[4:6]}-{bucket[6:8]}"
    return f"{date} {bucket[8:10]}:00" if len(bucket) == 10 else date


def _utc(moment: datetime) -> datetime:
    # A naive datetime is taken as UTC, as everywhere else in the project.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _require_span(count: int, what: str, most: int) -> None:
    if not 1 <= count <= most:
        raise ValueError(f"{what} must be 1 to {most} (got {count})")


# --------------------------------------------------------------------------- counters


def metric_fields(
    channel: str | None, queue: str | None, agent: str | None,
    score: int, scale_min: int, scale_max: int,
) -> dict[str, int]:
    """The HINCRBY field -> amount increments that count one survey response."""
    if scale_max <= scale_min:
        raise ValueError(f"scale_min {scale_min} must be below scale_max {scale_max}")
    prefix = SEP.join(_dimension(v) for v in (channel, queue, agent)) + SEP
    amounts = {
        "n": 1,
        "b2": int(is_bottom_2_box(score, scale_min)),
        "t2": int(score >= scale_max - 1),
        "sum": score,
        "norm": round(NORM_UNIT * (score - scale_min) / (scale_max - scale_min)),
    }
    return {prefix + metric: amount for metric, amount in amounts.items() if amount}


def _dimension(value: str | None) -> str:
    # The separator inside a value would shift every later part of the field name.
    text = (value or "").replace(SEP, " ").strip()
    return text or MISSING


def sum_counters(hashes: Iterable[Counters]) -> dict[str, int]:
    """Several bucket hashes added field by field (e.g. 24 hours into one day)."""
    total: dict[str, int] = {}
    for counters in hashes:
        for field, value in counters.items():
            name = _str(field)
            total[name] = total.get(name, 0) + int(value)
    return total


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    period: str  # "2026-11-22 10:00" or "2026-11-22"
    responses: int
    bottom2: int
    bottom2_share: float | None  # 0..1; None when there were no responses
    top2: int
    top2_share: float | None
    mean_score: float | None  # raw mean, on the surveys' own scale
    mean_norm: float | None = None  # mean on a common 0..1 scale (mixed scales)


def aggregate(
    period_label: str, counters: Counters, *,
    channel: str | None = None, queue: str | None = None, agent: str | None = None,
) -> Row:
    """One row from a bucket's counters, counting only fields that match the filters.

    A filter of None means "all"; "-" selects surveys that lacked that value.
    """
    wanted = (channel, queue, agent)
    totals = dict.fromkeys(METRICS, 0)
    for field, value in counters.items():
        parts = _str(field).split(SEP)
        if len(parts) != 4 or parts[3] not in totals:
            continue  # not a metric field; the hash may grow other fields later
        if all(want is None or want == got for want, got in zip(wanted, parts, strict=False)):
            totals[parts[3]] += int(value)
    return _row(period_label, totals)


def _row(period: str, totals: Mapping[str, int]) -> Row:
    n = totals["n"]
    return Row(
        period=period,
        responses=n,
        bottom2=totals["b2"],
        bottom2_share=totals["b2"] / n if n else None,
        top2=totals["t2"],
        top2_share=totals["t2"] / n if n else None,
        mean_score=totals["sum"] / n if n else None,
        mean_norm=totals["norm"] / NORM_UNIT / n if n else None,
    )


def total_row(rows: Iterable[Row], label: str = "total") -> Row:
    """All rows together; means are weighted by each row's responses."""
    counted = [row for row in rows if row.responses]
    n = sum(row.responses for row in counted)
    bottom2 = sum(row.bottom2 for row in counted)
    top2 = sum(row.top2 for row in counted)
    score_sum = sum((row.mean_score or 0.0) * row.responses for row in counted)
    norm_sum = sum((row.mean_norm or 0.0) * row.responses for row in counted)
    return Row(
        period=label,
        responses=n,
        bottom2=bottom2,
        bottom2_share=bottom2 / n if n else None,
        top2=top2,
        top2_share=top2 / n if n else None,
        mean_score=score_sum / n if n else None,
        mean_norm=norm_sum / n if n else None,
    )


# --------------------------------------------------------------------------- output

_HEADERS = ("period", "responses", "bottom-2", "share", "top-2", "share", "mean", "mean 0-1")


def format_table(rows: list[Row], title: str) -> str:
    """An aligned text table, one line per row, then a totals line."""
    body = [_cells(row) for row in rows]
    total = _cells(total_row(rows))
    widths = [max(len(line[i]) for line in (_HEADERS, *body, total))
              for i in range(len(_HEADERS))]
    rule = "  ".join("-" * w for w in widths)
    lines = [title, _line(_HEADERS, widths), rule]
    lines += [_line(cells, widths) for cells in body]
    lines += [rule, _line(total, widths)]
    return "\n".join(lines)


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.period, str(row.responses),
        str(row.bottom2), _percent(row.bottom2_share),
        str(row.top2), _percent(row.top2_share),
        _number(row.mean_score, 2), _number(row.mean_norm, 3),
    )


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    # Period left-aligned, figures right-aligned so digits line up.
    first = cells[0].ljust(widths[0])
    rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
    return "  ".join((first, *rest)).rstrip()


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _number(value: float | None, places: int) -> str:
    return "-" if value is None else f"{value:.{places}f}"


def rows_to_json(rows: Iterable[Row]) -> list[dict]:
    """Rows as JSON-ready dicts (shares 0..1; None where there were no responses)."""
    return [
        {
            "period": row.period,
            "responses": row.responses,
            "bottom2": row.bottom2,
            "bottom2_share": _rounded(row.bottom2_share, 4),
            "top2": row.top2,
            "top2_share": _rounded(row.top2_share, 4),
            "mean_score": _rounded(row.mean_score, 3),
            "mean_norm": _rounded(row.mean_norm, 4),
        }
        for row in rows
    ]


def _rounded(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)
