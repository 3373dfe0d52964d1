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
