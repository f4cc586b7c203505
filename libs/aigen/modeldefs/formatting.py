"""How numbers and option values read in messages, forms and prices."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from aigen.modeldefs.schema import Scalar

MICRO = Decimal("0.000001")


def plain_number(value: float) -> int | float:
    """5.0 → 5, so a form shows `max: 10` rather than `10.0`; 2.5 stays 2.5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def value_text(value: Scalar) -> str:
    """A value as a client would write it in JSON: true, 5, 2.5, 16:9."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(plain_number(value))
    return str(value)


def to_decimal(value: int | float | str | Decimal) -> Decimal:
    """Exact for what was written: 0.005 becomes Decimal('0.005'), not the float's binary expansion."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def tidy(value: Decimal) -> Decimal:
    """Rounded to a millionth, trailing zeros dropped, never in exponent form (0.03, 100, 0.0175)."""
    rounded = value.quantize(MICRO, rounding=ROUND_HALF_UP)
    if rounded == rounded.to_integral_value():
        return rounded.quantize(Decimal(1))
    return rounded.normalize()


def decimal_text(value: Decimal, min_places: int = 0) -> str:
    """`value` with at least `min_places` decimals and no more than it needs: 0.03 → '0.030' for 3."""
    value = tidy(value)
    places = max(min_places, -int(value.as_tuple().exponent))
    return f"{value:.{places}f}"
