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


@pytest.mark.parametrize("name", [n for n, row in without_argument().items() if row.elementwise])
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


# ----------------------------------------------------------------------------- whole-matrix rows

MATRIX_ROWS = [n for n, row in TABLE.items() if row.whole_matrix]


def well_conditioned(rng, n=4, batch=()):
    """A random square matrix with a positive determinant and a small condition number: I-dominated."""
    return 2.0 * np.eye(n) + 0.4 * rng.normal(size=batch + (n, n))


def fd_vjp(f, z, g, h=1e-6):
    """∂⟨g, f(z)⟩/∂z entry by entry by central differences, written out with no engine code."""
    out = np.zeros_like(z)
    for index in np.ndindex(*z.shape):
        up, down = z.copy(), z.copy()
        up[index] += h
        down[index] -= h
        out[index] = (np.sum(g * f(up)) - np.sum(g * f(down))) / (2 * h)
    return out


def test_the_matrix_rows_are_the_issues_six():
    assert set(MATRIX_ROWS) == {"inv", "logdet", "det", "trace", "frobenius", "transpose"}


@pytest.mark.parametrize("name", MATRIX_ROWS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_row_vjp_matches_finite_differences(name, seed):
    row = TABLE[name]
    rng = np.random.default_rng(seed)
    z = well_conditioned(rng)
    a = row.forward(z)
    assert a.shape == row.shape(z.shape)
    g = rng.normal(size=a.shape)
    np.testing.assert_allclose(row.backward(g, z, a), fd_vjp(row.forward, z, g), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", MATRIX_ROWS)
def test_matrix_row_works_under_leading_batch_axes(name):
    row = TABLE[name]
    rng = np.random.default_rng(5)
    z = well_conditioned(rng, batch=(2, 3))
    a = row.forward(z)
    g = rng.normal(size=a.shape)
    delta = row.backward(g, z, a)
    for index in np.ndindex(2, 3):
        np.testing.assert_allclose(a[index], row.forward(z[index]), rtol=1e-13)
        np.testing.assert_allclose(delta[index], row.backward(g[index], z[index], a[index]), rtol=1e-12)


@pytest.mark.parametrize("name, closed_form", [
    ("inv", lambda z, g: -np.linalg.inv(z).T @ g @ np.linalg.inv(z).T),
    ("logdet", lambda z, g: g * np.linalg.inv(z).T),
    ("det", lambda z, g: g * np.linalg.det(z) * np.linalg.inv(z).T),
    ("trace", lambda z, g: g * np.eye(len(z))),
    ("frobenius", lambda z, g: g * z / np.sqrt(np.sum(z ** 2))),
    ("transpose", lambda z, g: g.T),
])
def test_matrix_row_vjp_is_the_cookbook_formula(name, closed_form):
    row = TABLE[name]
    rng = np.random.default_rng(9)
    z = well_conditioned(rng)
    a = row.forward(z)
    g = rng.normal(size=a.shape)
    np.testing.assert_allclose(row.backward(g, z, a), closed_form(z, g), rtol=1e-12, atol=1e-14)


def test_a_singular_member_of_a_stack_is_nan_not_an_error_for_the_stack():
    z = np.stack([np.eye(2), np.array([[1.0, 2.0], [2.0, 4.0]])])
    a = TABLE["inv"].forward(z)
    np.testing.assert_allclose(a[0], np.eye(2))
    assert np.all(np.isnan(a[1]))


def test_logdet_outside_its_domain_is_nan_and_its_domain_says_why():
    z = np.array([[1.0, 2.0], [3.0, 1.0]])
    assert np.isnan(TABLE["logdet"].forward(z)).all()
    assert "det z = -5" in TABLE["logdet"].matrix_domain.problem(z)
    assert TABLE["inv"].matrix_domain.problem(np.array([[1.0, 2.0], [2.0, 4.0]])).startswith("z is singular")


def test_det_has_a_gradient_at_a_singular_matrix_too():
    z = np.array([[1.0, 2.0, 0.5], [2.0, 4.0, 1.0], [0.3, -1.0, 2.0]])  # rank 2
    row = TABLE["det"]
    g = np.array([[1.7]])
    np.testing.assert_allclose(row.backward(g, z, row.forward(z)), fd_vjp(row.forward, z, g), rtol=1e-6, atol=1e-8)
    assert row.matrix_domain is None
