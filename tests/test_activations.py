"""Every activation's derivative against finite differences on a grid (table-driven)."""

import numpy as np
import pytest

from gradcheck.activations import TABLE, with_argument, without_argument

GRID = np.linspace(-3.0, 3.0, 61).reshape(61, 1)
POSITIVE = np.linspace(0.05, 4.0, 61).reshape(61, 1)
AWAY_FROM_ZERO = GRID[np.abs(GRID[:, 0]) > 1e-3]
DOMAINS = {"sqrt": POSITIVE, "log": POSITIVE, "relu": AWAY_FROM_ZERO, "abs": AWAY_FROM_ZERO}
H = 1e-6


def fd(f, z):
    return (f(z + H) - f(z - H)) / (2 * H)


@pytest.mark.parametrize("name", [n for n in without_argument() if n != "softmax"])
def test_elementwise_derivative_matches_finite_differences(name):
    row = TABLE[name]
    z = DOMAINS.get(name, GRID)
    a = row.forward(z)
    analytic = row.backward(np.ones_like(z), z, a)
    np.testing.assert_allclose(analytic, fd(row.forward, z), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", list(with_argument()))
@pytest.mark.parametrize("c", [-1.5, 0.5, 2.0, 3.0])
def test_activation_with_argument_derivatives(name, c):
    row = TABLE[name]
    z = POSITIVE if name == "power" else GRID
    a = row.forward(z, c)
    np.testing.assert_allclose(row.backward(np.ones_like(z), z, a, c), fd(lambda t: row.forward(t, c), z),
                               rtol=1e-7, atol=1e-8)
    dc = row.argument_grad(np.ones_like(z), z, a, c)
    np.testing.assert_allclose(dc, fd(lambda t: row.forward(z, t), c), rtol=1e-7, atol=1e-8)


def test_softmax_vjp_matches_dense_jacobian():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 3))
    g = rng.normal(size=(5, 3))
    row = TABLE["softmax"]
    a = row.forward(z)
    got = row.backward(g, z, a)
    for col in range(3):
        s = a[:, col]
        jacobian = np.diag(s) - np.outer(s, s)  # written out densely, independent of the VJP
        np.testing.assert_allclose(got[:, col], jacobian.T @ g[:, col], rtol=1e-12, atol=1e-14)


def test_softmax_is_over_columns():
    z = np.array([[1.0, 2.0], [3.0, 4.0]])
    a = TABLE["softmax"].forward(z)
    np.testing.assert_allclose(a.sum(axis=0), [1.0, 1.0])
    assert not np.allclose(a.sum(axis=1), [1.0, 1.0])
