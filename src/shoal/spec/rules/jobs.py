"""Jobs: kinds, cron schedules, time zones and timeouts."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from functools import lru_cache

from croniter import croniter

from shoal.spec.problems import Problem
from shoal.spec.rules.view import Json, entries, obj, text

# Go's time.ParseDuration syntax, which DigitalOcean uses for durations ("1h30m", "21600s").
GO_DURATION_RE = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def check_jobs(spec: Json) -> Iterator[Problem]:
    for path, job in entries(spec, "jobs"):
        kind = text(job, "kind")
        schedule = obj(job, "schedule")
        scheduled = kind in ("SCHEDULED", "SCHEDULE")
        if scheduled and schedule is None:
            yield Problem(f"{path}.schedule", "is required for a job of kind SCHEDULED")
        if not scheduled and job.get("schedule") is not None:
            yield Problem(f"{path}.schedule", "is only allowed for a job of kind SCHEDULED")
        if schedule is not None:
            yield from _schedule_problems(f"{path}.schedule", schedule)
        timeout = text(job, "timeout")
        if timeout is not None and not GO_DURATION_RE.match(timeout):
            yield Problem(f"{path}.timeout", f'"{timeout[:64]}" is not a duration such as "30m" or "1h30m"')


def _schedule_problems(path: str, schedule: Json) -> Iterator[Problem]:
    cron = text(schedule, "cron")
    if schedule.get("cron") is None:
        yield Problem(f"{path}.cron", "is required")
    elif cron is not None and not valid_cron(cron):
        yield Problem(f"{path}.cron", f'"{cron[:64]}" is not a valid 5-field cron expression')
    time_zone = text(schedule, "time_zone")
    if time_zone is not None and not valid_time_zone(time_zone):
        yield Problem(f"{path}.time_zone", f'"{time_zone[:64]}" is not a known time zone such as "America/New_York"')


@lru_cache(maxsize=256)
def valid_cron(expression: str) -> bool:
    if len(expression.split()) != 5 or len(expression) > 200:
        return False
    try:
        return bool(croniter.is_valid(expression))
    except Exception:  # croniter raises assorted types on odd input; any failure means invalid
        return False


@lru_cache(maxsize=256)
def valid_time_zone(name: str) -> bool:
    # zoneinfo reads the bundled tz database; that static data is the one lookup the spec does.
    if not name or len(name) > 64 or name.startswith(("/", ".")) or "\x00" in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError, OSError on odd keys
        return False
    return True
