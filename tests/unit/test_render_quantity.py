"""Quantities rendered as the apiserver writes them back, and HPA tolerances."""

import pytest

from imagegen.render import quantity


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("500m", "500m"),
        ("0.5", "500m"),
        ("1", "1"),
        ("1000m", "1"),
        ("1.5", "1500m"),
        ("2000", "2k"),
        ("5000G", "5T"),
        ("512M", "512M"),
        ("0", "0"),
        ("0Mi", "0"),
        ("0.0000000001", "1n"),
        ("256Mi", "256Mi"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("1536Ki", "1536Ki"),
        ("0.5Ki", "512"),
        ("0.1Ki", "102400m"),
    ],
)
def test_quantity_is_spelled_as_the_apiserver_returns_it(given: str, canonical: str) -> None:
    assert quantity.canonical(given) == canonical


@pytest.mark.parametrize("given", ["", "1e3", "-1", "1.", "one", "1 Mi", "1mi"])
def test_what_is_not_a_plain_quantity_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        quantity.canonical(given)


@pytest.mark.parametrize(
    ("ratio", "tolerance"),
    [
        (10 / 70, "143m"),
        (40 / 70, "571m"),
        (0.5, "500m"),
        (1 / 3, "333m"),
        (2 / 3, "667m"),
        (1 / 16, "63m"),
        (1 / 80, "13m"),
        (0.01, "10m"),
        (1.0, "1"),
        (1.25, "1250m"),
        (99, "99"),
        (0.0, "0"),
        (0.0004, "0"),
    ],
)
def test_tolerance_rounds_half_up_to_a_canonical_milli_quantity(
    ratio: float, tolerance: str
) -> None:
    assert quantity.tolerance_quantity(ratio) == tolerance


@pytest.mark.parametrize("ratio", [-0.1, float("nan"), float("inf")])
def test_tolerance_of_a_negative_or_infinite_ratio_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        quantity.tolerance_quantity(ratio)
