"""The ``/jobs`` filters of OGC API - Processes Part 1 (1.0), class job-list, parsed and checked.

``datetime`` (an RFC 3339 instant, or an interval ``A/B`` with an open end ``../B``, ``/B``,
``A/..``, ``A/``) keeps the jobs *created* in it; ``minDuration`` and ``maxDuration`` (seconds)
keep the jobs whose run time (``finished`` or now, minus ``started``) lies between them. An
instant matches at the precision it is written: ``…T10:15:30Z`` is that whole second. Every
mistake is one 400 naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.service.store import stamp_of

#: RFC 3339, section 5.6 (``T``/``Z`` in either case; an offset is required; a ``+`` sent
#: unencoded in a query arrives as a space, and is read as the ``+`` it was).
_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+ -]\d{2}:\d{2})"
)
#: How an open end of an interval may be written.
_OPEN = ("", "..")


@dataclass(frozen=True)
class JobFilters:
    """What ``/jobs`` keeps: a creation-time range (stamps, both ends included; ``None`` open)
    and a run-time range in seconds (``None`` when not asked)."""

    created_from: str | None = None
    created_to: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None

    @property
    def by_duration(self) -> bool:
        return self.min_duration is not None or self.max_duration is not None

    def query(self) -> str:
        """The filters as they were understood, for ``next``/``prev`` links (``&k=v``...)."""
        parts = []
        if self.created_from or self.created_to:
            start = self.created_from or ".."
            end = self.created_to or ".."
            parts.append(f"datetime={start}/{end}" if start != end else f"datetime={start}")
        if self.min_duration is not None:
            parts.append(f"minDuration={self.min_duration:g}")
        if self.max_duration is not None:
            parts.append(f"maxDuration={self.max_duration:g}")
        return "".join(f"&{p}" for p in parts)


def parse_filters(args: Mapping[str, Sequence[str]]) -> JobFilters:
    """``datetime``, ``minDuration`` and ``maxDuration`` of a ``/jobs`` query (400 when wrong)."""
    created_from, created_to = _parse_datetime(args.get("datetime", ()))
    low = _durations(args, "minDuration")
    high = _durations(args, "maxDuration")
    min_duration = max(low) if low else None  # at least every value given
    max_duration = min(high) if high else None  # at most every value given
    return JobFilters(created_from, created_to, min_duration, max_duration)


def _parse_datetime(values: Sequence[str]) -> tuple[str | None, str | None]:
    if not values:
        return None, None
    if len(values) > 1:
        raise InvalidInputError("datetime: give one instant or interval")
    text = values[0].strip()
    if "/" not in text:
        start, precision = _instant(text)
        return stamp_of(start), stamp_of(start + precision - timedelta(microseconds=1))
    first, _, second = text.partition("/")
    if first in _OPEN and second in _OPEN:
        raise InvalidInputError("datetime: an interval needs at least one end")
    begin = None if first in _OPEN else _instant(first)[0]
    end = None if second in _OPEN else _instant(second)[0]
    if begin is not None and end is not None and begin > end:
        raise InvalidInputError("datetime: the interval ends before it starts")
    return (stamp_of(begin) if begin else None), (stamp_of(end) if end else None)


def _instant(text: str) -> tuple[datetime, timedelta]:
    """An RFC 3339 date-time and the precision it is written at."""
    match = _DATE_TIME.fullmatch(text)
    if not match:
        raise InvalidInputError(
            f"datetime: {text[:60]!r} is not an RFC 3339 date-time (e.g. 2024-05-01T10:00:00Z) "
            "or an interval of them (A/B, ../B, A/..)"
        )
    day, clock, fraction, zone = match.groups()
    digits = (fraction or "")[:6]
    moment = f"{day}T{clock}{'.' + digits.ljust(6, '0') if digits else ''}"
    zone = "+00:00" if zone in ("Z", "z") else zone.replace(" ", "+")
    try:
        parsed = datetime.fromisoformat(moment + zone)
    except ValueError:
        raise InvalidInputError(f"datetime: {text[:60]!r} is not a valid date-time") from None
    precision = timedelta(microseconds=10 ** (6 - len(digits)))
    return parsed.astimezone(UTC), precision


def _durations(args: Mapping[str, Sequence[str]], name: str) -> list[float]:
    """A duration parameter: whole seconds, repeated or comma-separated."""
    values = [v.strip() for raw in args.get(name, ()) for v in raw.split(",")]
    found = []
    for value in values:
        if not value.isdigit() or len(value) > 12:
            raise InvalidInputError(f"{name} must be a whole number of seconds (0 or more)")
        found.append(float(value))
    return found
