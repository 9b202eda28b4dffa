"""Backprop's round-off (gradcheck.roundoff) is measured only where a comparison fails without it: four backward
passes cost more than a fast check of a large param, and a passing comparison never needs them."""

from __future__ import annotations

from pathlib import Path

import pytest

import gradcheck
from gradcheck import roundoff

HERE = Path(__file__).resolve().parent
SATURATED = HERE / "fixtures" / "roundoff" / "dense_sat.yaml"


@pytest.fixture
def measured(monkeypatch):
    """The number of times a check measured backprop's round-off."""
    calls = []
    real = roundoff.backprop_error
    monkeypatch.setattr(roundoff, "backprop_error", lambda *a: calls.append(1) or real(*a))
    return calls


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_passing_check_never_measures_it(measured, mode):
    result = gradcheck.check(gradcheck.load(str(HERE.parent / "specs" / "softmax_regression.yaml")), mode=mode)
    assert result.status == "pass" and measured == []
    assert all(p.backprop.analytic_error is None for p in result.params)


def test_a_comparison_that_needs_it_measures_it_once(measured):
    """W1[1, 4] of the saturated MLP fails the complex step without it (tests/test_roundoff.py)."""
    result = gradcheck.check(gradcheck.load(str(SATURATED)), method="complex-step")
    assert result.status == "pass" and measured == [1]
    assert any(p.backprop.analytic_error is not None for p in result.params)


def test_fast_mode_measures_it_at_most_once(measured):
    """Its directions sum over every entry, so the large ones may settle them without b; never twice."""
    result = gradcheck.check(gradcheck.load(str(SATURATED)), method="complex-step", mode="fast")
    assert result.status == "pass" and len(measured) <= 1
