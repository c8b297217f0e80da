"""Field types the API's schemas share: dates and moments of a clinical record, with a plausible year and a real zone.

A date-time a client sends is stored as PostgreSQL `timestamptz`, which refuses a UTC offset beyond ±15:59
(schemathesis sent `1842-05-10T00:35:49-16:40`: a 500 on PostgreSQL, stored on SQLite), and Python cannot
move year 1 with a positive offset to UTC. Real offsets run from UTC-12:00 to UTC+14:00 (the IANA time zone
database), and a record of this clinic is from no earlier than 1900 (as birth years) nor later than 2100.
"""

from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator

EARLIEST_YEAR = 1900
LATEST_YEAR = 2100
OFFSET_WEST = timedelta(hours=-12)  # UTC-12:00, Baker Island: the farthest west
OFFSET_EAST = timedelta(hours=14)  # UTC+14:00, Line Islands: the farthest east


def clinic_date(value: date) -> date:
    """The value, if its year is from 1900 to 2100; else a ValueError saying what is accepted."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"{value.isoformat()} is out of range: expected a year from {EARLIEST_YEAR} to {LATEST_YEAR}")
    return value


def clinic_time(value: datetime) -> datetime:
    """The value, if its year and UTC offset are real; else a ValueError saying what is accepted."""
    clinic_date(value.date())
    offset = value.utcoffset()
    if offset is not None and not OFFSET_WEST <= offset <= OFFSET_EAST:
        raise ValueError(
            f"{value.isoformat()} has UTC offset {value.strftime('%z')}: expected one from -12:00 to +14:00"
            " (or none, read as the clinic's local time)"
        )
    return value


ClinicDate = Annotated[date, AfterValidator(clinic_date)]
ClinicTime = Annotated[datetime, AfterValidator(clinic_time)]
