"""Public holidays of a tenant's country: days whose sales no weekday baseline describes."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays as holidays_lib
from dateutil.easter import easter


@lru_cache(maxsize=64)
def _calendars(country_code: str | None, years: tuple[int, ...]
               ) -> tuple[dict[date, str], list[dict[date, str]]]:
    """The country's national calendar and each of its regions' calendars in those years
    (none for an unknown country)."""
    if not country_code:
        return {}, []
    try:
        national = holidays_lib.country_holidays(country_code, years=list(years))
    except NotImplementedError:
        return {}, []
    regions = [dict(holidays_lib.country_holidays(country_code, subdiv=region,
                                                  years=list(years)))
               for region in national.subdivisions]
    return dict(national), regions


@lru_cache(maxsize=64)
def public_holidays(country_code: str, years: tuple[int, ...]) -> dict[date, str]:
    """The country's public holidays in those years, by date.

    The national calendar, plus the days most of the country's regions observe (England, Wales
    and Northern Ireland have Easter Monday and the August bank holiday; the national GB
    calendar has neither), plus Easter Sunday wherever Good Friday or Easter Monday is a
    holiday: shops that close for Easter close for the whole of it. An unknown country has
    none, so every day is judged as usual.
    """
    national, regions = _calendars(country_code, years)
    days = dict(national)
    observed: dict[date, list[str]] = {}
    for calendar in regions:
        for day, name in calendar.items():
            observed.setdefault(day, []).append(name)
    for day, names in observed.items():
        if len(names) * 2 > len(regions):
            days.setdefault(day, names[0])
    for year in years:
        sunday = easter(year)
        if sunday - timedelta(days=2) in days or sunday + timedelta(days=1) in days:
            days.setdefault(sunday, "Easter Sunday")
    return days


@lru_cache(maxsize=64)
def holiday_names(country_code: str | None, years: tuple[int, ...]) -> dict[date, str]:
    """Every day named as a holiday anywhere in the country (any region's calendar): the days
    a store may habitually close on. The names let a moving holiday (Corpus Christi) be
    recognised from one year to the next; fixed dates are ``ClosedDayRule``'s."""
    national, regions = _calendars(country_code, years)
    days = dict(national)
    for calendar in regions:
        for day, name in calendar.items():
            days.setdefault(day, name)
    return days


def habitual_holiday_closures(days: list[date], empty: list[bool],
                              country_code: str | None) -> list[bool]:
    """For each day: is it a holiday (see ``holiday_names``) on which the store sold nothing
    in an earlier year? An empty day then is the store's custom, not an outage."""
    if not days:
        return []
    names = holiday_names(country_code, tuple(range(min(days).year, max(days).year + 1)))
    first_closed: dict[str, int] = {}  # holiday name -> first year the store was closed on it
    for day, was_empty in zip(days, empty, strict=True):
        name = names.get(day)
        if name and was_empty:
            first_closed[name] = min(first_closed.get(name, day.year), day.year)
    return [day in names and first_closed.get(names[day], day.year) < day.year
            for day in days]
