"""Kubernetes quantities in canonical form: the string the apiserver writes back.

The apiserver parses a quantity and serializes it canonically ("0.5" reads back as
"500m", "1024Mi" as "1Gi"). The operator compares rendered manifests with live objects
field by field, so a quantity rendered in any other spelling would look changed forever.
"""

import decimal
import fractions
import math
import re
from typing import Final

_DECIMAL_EXPONENTS: Final = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_SUFFIXES: Final = {exponent: suffix for suffix, exponent in _DECIMAL_EXPONENTS.items()}
_BINARY_SUFFIXES: Final = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_QUANTITY: Final = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>[KMGTPE]i|[numkMGTPE])?", re.ASCII
)
_NANOS: Final = 10**9


def canonical(value: str) -> str:
    """The canonical spelling of a quantity, as the apiserver returns it: "0.5" -> "500m".

    Follows apimachinery's resource.Quantity: values round up to whole nanos; a binary
    suffix (Ki, Mi, ...) stays binary for whole numbers of at least 1024, with the largest
    suffix that keeps the number whole; everything else takes the largest decimal suffix
    that keeps the number whole. Raises ValueError for what is not a plain quantity.
    """
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    number = fractions.Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix.endswith("i"):
        amount = number * 1024 ** _BINARY_SUFFIXES.index(suffix)
    else:
        amount = number * fractions.Fraction(10) ** _DECIMAL_EXPONENTS[suffix]
    nanos = math.ceil(amount * _NANOS)
    if suffix.endswith("i") and nanos >= 1024 * _NANOS and nanos % _NANOS == 0:
        return _binary(nanos // _NANOS)
    return _decimal(nanos)


def tolerance_quantity(ratio: float) -> str:
    """An HPA tolerance as a canonical quantity, rounded half up to thousandths: 1/7 -> "143m".

    The apiserver would keep nine decimals; three say all a CPU band needs and keep the
    object readable. The float goes through its shortest decimal spelling (repr), so a
    ratio of small integers such as 1/16 rounds as its exact value 0.0625 does, to "63m".
    """
    if not (math.isfinite(ratio) and ratio >= 0):
        raise ValueError(f"a tolerance is a finite ratio >= 0, not {ratio!r}")
    millis = (decimal.Decimal(repr(ratio)) * 1000).to_integral_value(decimal.ROUND_HALF_UP)
    return canonical(f"{int(millis)}m")


def _decimal(nanos: int) -> str:
    if nanos == 0:
        return "0"
    exponent = -9
    while nanos % 1000 == 0 and exponent < max(_DECIMAL_SUFFIXES):
        nanos //= 1000
        exponent += 3
    return f"{nanos}{_DECIMAL_SUFFIXES[exponent]}"


def _binary(whole: int) -> str:
    power = 0
    while whole % 1024 == 0 and power < len(_BINARY_SUFFIXES) - 1:
        whole //= 1024
        power += 1
    return f"{whole}{_BINARY_SUFFIXES[power]}"
