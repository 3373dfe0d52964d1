"""The one error type for bad user input.

Every validation failure raises :class:`InputError` with a one-line message that names the
offending field and its value, e.g. ``InputError("cells", -3, "must be positive")`` renders as
``cells=-3: must be positive``. The CLI turns it into a one-line message and exit status 2.
"""
from __future__ import annotations


class InputError(ValueError):
    """Invalid user input: names the field, the value and what is wrong."""

    def __init__(self, field: str, value, reason: str):
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


def check_positive_int(field: str, value) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) <= 0:
        raise InputError(field, value, "must be a positive integer")
    return int(value)


def check_fraction(field: str, value) -> float:
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise InputError(field, value, "must lie in [0, 1]")
    return v


def check_positive(field: str, value) -> float:
    v = float(value)
    if not (v > 0.0) or v != v or v == float("inf"):
        raise InputError(field, value, "must be a finite positive number")
    return v


def check_choice(field: str, value, choices) -> str:
    if value not in choices:
        raise InputError(field, value, f"must be one of {sorted(choices)}")
    return value


#: Seeds are stored as 64-bit NetCDF/HDF5 attributes: they must fit a signed 64-bit integer.
MAX_SEED = 2**63 - 1


def check_int_range(field: str, value, lo: int, hi: int, why: str = "") -> int:
    """An integer in [lo, hi]; the message gives the bound and ``why``."""
    try:
        ok = not isinstance(value, bool) and float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        raise InputError(field, value, "must be an integer")
    v = int(value)
    if not lo <= v <= hi:
        raise InputError(field, value, f"must lie in [{lo}, {hi}]" + (f" ({why})" if why else ""))
    return v


def check_seed(field: str, value) -> int:
    """A seed: an integer in [0, 2**63 - 1] (stored as a 64-bit attribute in every output)."""
    return check_int_range(field, value, 0, MAX_SEED, "seeds are stored as 64-bit integers")


def check_range(field: str, value, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False,
                why: str = "") -> float:
    """A finite number in the interval (lo/hi open or closed); the message gives the interval and ``why``."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(field, value, "must be a number") from None
    ok = v == v and abs(v) != float("inf") and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        iv = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise InputError(field, value, f"must lie in {iv}" + (f" ({why})" if why else ""))
    return v
