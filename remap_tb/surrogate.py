r"""A Gaussian-process surrogate of validation accuracy over OTMANN distances (NASBOT).

Kandasamy, Neiswanger, Schneider, Póczos and Xing, "Neural Architecture Search with
Bayesian Optimisation and Optimal Transport", NeurIPS 2018 (NASBOT), model the accuracy
of a network :math:`x` as a Gaussian process whose kernel is an exponentiated OTMANN
distance. We use one such kernel on the normalised distance :math:`\bar d = d / S \in [0, 1]`
(``otmann.distance_pairs_both``, ``ProjectionService.normalised_structural_distances``):

.. math::

    y_i = f(x_i) + \varepsilon_i, \qquad f \sim \mathcal{GP}(\mu, k), \qquad
    k(x, x') = \sigma_f^2 \exp(-\beta\, \bar d(x, x')), \qquad
    \varepsilon_i \sim \mathcal N(0, \sigma_n^2).

Symbols: :math:`y_i` the validation accuracy of finished model i (by default its logit,
see below), :math:`\mu(x) = b_0 + b_1 \log_{10}(\text{params}(x) + 1)` the mean (a GP
with explicit basis functions, Rasmussen and Williams 2006, section 2.7; a constant when
parameter counts are unknown), :math:`\sigma_f^2` the signal variance, :math:`\beta > 0` the inverse length scale,
:math:`\sigma_n^2` the noise variance (seeds, early stopping). The normalised OTMANN
distance is not a metric, so :math:`\exp(-\beta \bar d)` need not be positive definite
(NASBOT notes the same); the noise keeps :math:`A = C_\beta + \lambda I` positive definite
(:math:`C_\beta = \exp(-\beta \bar D)`, :math:`\lambda = \sigma_n^2 / \sigma_f^2`), and
hyperparameters that would not are never chosen.

Hyperparameters are fitted by maximising the log marginal likelihood of the **finished
models only** (never of candidates). The mean's coefficients :math:`b` get a vague Gaussian
prior and are integrated out (Rasmussen and Williams 2006, section 2.7, eq. 2.45: the limit
of a prior :math:`b \sim \mathcal N(\bar b, B)` as :math:`B^{-1} \to 0`; in geostatistics the
*restricted* likelihood, REML), and :math:`\sigma_f^2` has a closed-form maximiser given
:math:`(\beta, \lambda)`, so what is searched is

.. math::

    \ell(\beta, \lambda) = -\tfrac{n-p}2 \log(2\pi \hat\sigma_f^2) - \tfrac12 \log|A|
        - \tfrac12 \log|H^\top A^{-1} H| - \tfrac{n-p}2,
    \quad \hat b = (H^\top A^{-1} H)^{-1} H^\top A^{-1} y,
    \quad \hat\sigma_f^2 = \frac{(y - H\hat b)^\top A^{-1} (y - H\hat b)}{n - p},

(:math:`H` the (n, p) basis of the mean, :math:`\hat b` the posterior mean of :math:`b`,
generalised least squares) evaluated for every :math:`\lambda` of a grid from one
eigendecomposition of :math:`C_\beta` per :math:`\beta` (a grid over :math:`\beta`, then a
bounded scalar refinement). Plugging in :math:`\hat b` instead (the *profile* likelihood,
``restricted=False``: :math:`n` for :math:`n - p` and no :math:`\log|H^\top A^{-1} H|`)
underestimates the variances with few models (on 20 populations of 30 digits models made
like the demo's, mean leave-one-out rank correlation 0.516 with it against 0.537 integrated;
``benchmarks/surrogate.py`` and ``docs/ARCHITECTURE.md``).

:math:`\beta` is bounded in units of the data's distance scale (:func:`beta_bounds_for`:
the length scale :math:`1/\beta` between :math:`q_{05}/3` and :math:`2 q_{95}` of the
model-model distances) and :math:`\lambda \ge 10^{-2}`
(:data:`RATIO_BOUNDS`), so the fit cannot interpolate the data with zero noise. Above
:data:`FIT_SIZE` models the hyperparameters are fitted on a seeded random subset of that
size (the posterior still uses every model). The fit of a population (keyed by its finished
models' id, accuracy and parameters) is kept for the next calls: candidates never change it.

Output warping (:class:`Logit`, the default): the GP models :math:`z_i = g(y_i) =
\log(y_i / (1 - y_i))`, because accuracies saturate near 1 and failed trainings at chance
level are outliers a Gaussian likelihood on raw accuracies cannot absorb (on the REMAP
QuickDraw set the unwarped GP ranks worse than chance in leave-one-out). A fixed transform
keeps predictions from different populations on one scale (:class:`NormalScores`, the
rank-based warp, is kept as an option).

The posterior at a candidate :math:`x_*` with :math:`c_* = \exp(-\beta \bar d(x_*, X))`:

.. math::

    m(x_*) = h_*^\top \hat b + c_*^\top A^{-1} (z - H\hat b), \qquad
    s^2(x_*) = \hat\sigma_f^2 \,\bigl(1 - c_*^\top A^{-1} c_* + r_*^\top (H^\top A^{-1} H)^{-1} r_*\bigr),
    \quad r_* = h_* - H^\top A^{-1} c_*,

the latent mean and variance (R&W eq. 2.42: the last term is the uncertainty of
:math:`b`, largest for networks whose size the finished models do not cover; it is left
out when the hyperparameters, :math:`b` included, are given by hand); the predicted accuracy is :math:`g^{-1}(m)` with standard
deviation :math:`(g^{-1}(m+s) - g^{-1}(m-s))/2`. Expected improvement over the best
finished accuracy :math:`y^+` within the budget (Močkus 1978; Jones, Schonlau and Welch
1998; NASBOT's acquisition), on those predicted accuracy and sd:

.. math::

    \mathrm{EI}(x_*) = (m - y^+)\,\Phi(u) + s\,\varphi(u), \quad u = (m - y^+) / s,

and :math:`\max(m - y^+, 0)` where :math:`s = 0`.

Scoring many candidates (:func:`predict_candidates`) against a large experiment uses a
local posterior: each candidate is conditioned on the :data:`NEIGHBOURS` finished models
nearest to its parent (by the cached model-model distances), not on all n, so a request
costs ``candidates x NEIGHBOURS`` OTMANN pairs. The kernel decays with distance and a
candidate is a few changes away from its parent, so the models far from the parent carry
almost no weight (the subset-of-data / nearest-neighbour GP approximation; Rasmussen and
Williams 2006, section 8.3.3; Datta et al. 2016).

Pure numpy/scipy; ``remap_tb.otmann`` (numpy + POT) is imported only by
:func:`predict_candidates`.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy import linalg, optimize, stats

__all__ = [
    "FIT_SIZE", "MIN_MODELS", "NEIGHBOURS", "POOL_SIZE", "Hyperparameters", "NormalScores", "OtmannGP",
    "expected_improvement", "finished_models", "fit_hyperparameters", "log_marginal_likelihood",
    "otmann_kernel", "predict_candidates",
]

#: finished models an experiment needs before candidates get a prediction
MIN_MODELS = 8
#: finished models each candidate is conditioned on when the experiment has more
NEIGHBOURS = 64
#: models the hyperparameters are fitted on when the experiment has more (seeded subset)
FIT_SIZE = 150
#: finished models a generate request draws on when the experiment has more (:func:`local_pool`)
POOL_SIZE = 1_000
BETA_BOUNDS = (0.1, 1000.0)  # outer clamp of the data-scaled bounds (beta_bounds_for)
#: lambda = noise variance / signal variance; the floor 1e-2 keeps the GP from interpolating
RATIO_BOUNDS = (1e-2, 10.0)
#: beta in [BETA_SCALE[0] / q95, BETA_SCALE[1] / q05] of the positive model-model distances
BETA_SCALE = (0.5, 3.0)
_BETA_GRID = 11
_RATIO_GRID = 41
_EIG_FLOOR = 1e-9  # smallest eigenvalue of A accepted as positive definite


@dataclass(frozen=True)
class Hyperparameters:
    r"""Fitted kernel parameters :math:`\beta`, :math:`\sigma_f^2`, :math:`\sigma_n^2`, the mean's
    coefficients :math:`b` (one per basis column: constant, then log10 parameters when used;
    their posterior mean when fitted) and the log marginal likelihood they reach (``nan``
    when set by hand; the restricted one, :func:`log_marginal_likelihood`, unless fitted
    with ``restricted=False``)."""

    beta: float
    signal_var: float
    noise_var: float
    coef: tuple[float, ...]
    log_likelihood: float = math.nan

    @property
    def mean(self) -> float:
        """The constant term of the mean."""
        return self.coef[0]

    def to_json(self) -> dict[str, Any]:
        return {"beta": self.beta, "signal_var": self.signal_var, "noise_var": self.noise_var,
                "coef": list(self.coef)}


def _one_blas_thread():
    """Run small dense linear algebra on one BLAS thread: on a busy 2-core machine OpenBLAS's
    threads make a 200 x 200 ``eigh`` ~14x slower (0.11 s against 8 ms)."""
    try:
        from threadpoolctl import threadpool_limits  # comes with scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _check_distances(D: Any, name: str, square: bool = False) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or (square and D.shape[0] != D.shape[1]):
        raise ValueError(f"{name} must be a {'square ' if square else ''}2-D array, got shape {D.shape}")
    if not np.all(np.isfinite(D)) or (D.size and D.min() < 0):
        raise ValueError(f"{name} must hold finite non-negative distances")
    return D


def _check_targets(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n,) or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be {n} finite numbers, got shape {y.shape}")
    return y


def otmann_kernel(D: Any, beta: float, signal_var: float = 1.0) -> np.ndarray:
    r""":math:`K = \sigma_f^2 \exp(-\beta \bar D)` elementwise (NASBOT's kernel on one distance).

    Parameters
    ----------
    D : array of float, any shape
        Normalised OTMANN distances :math:`\bar d \in [0, 1]`.
    beta, signal_var : float, > 0

    Examples
    --------
    >>> otmann_kernel([[0.0, 0.5]], beta=2.0, signal_var=3.0).round(4).tolist()
    [[3.0, 1.1036]]
    """
    if not beta > 0 or not signal_var > 0:
        raise ValueError(f"beta and signal_var must be positive, got {beta!r} and {signal_var!r}")
    return signal_var * np.exp(-beta * np.asarray(D, dtype=np.float64))


def _basis(H: Any, n: int) -> np.ndarray:
    if H is None:
        return np.ones((n, 1))
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != n or not np.all(np.isfinite(H)):
        raise ValueError(f"H must be a finite ({n}, p) array, got shape {H.shape}")
    return H


def log_marginal_likelihood(D: Any, y: Any, hyper: Hyperparameters, H: Any = None,
                            restricted: bool = True) -> float:
    r"""Log marginal likelihood of ``y`` under the GP with ``hyper``, :math:`K_y = \sigma_f^2
    \exp(-\beta \bar D) + \sigma_n^2 I`.

    ``restricted`` (default): the mean's coefficients integrated out under a vague prior
    (Rasmussen and Williams 2006, eq. 2.45; ``hyper.coef`` is not used),

    .. math::

        \log p(y) = -\tfrac12 (y - H\hat b)^\top K_y^{-1} (y - H\hat b) - \tfrac12 \log|K_y|
            - \tfrac12 \log|H^\top K_y^{-1} H| - \tfrac{n-p}2 \log 2\pi,
        \quad \hat b = (H^\top K_y^{-1} H)^{-1} H^\top K_y^{-1} y;

    otherwise with :math:`b` = ``hyper.coef`` plugged in,
    :math:`-\tfrac12 (y - Hb)^\top K_y^{-1} (y - Hb) - \tfrac12 \log|K_y| - \tfrac n2 \log 2\pi`.

    ``-inf`` when :math:`K_y` is not positive definite. D: (n, n), y: (n,), H: (n, p)
    mean basis (default a column of ones; restricted: its first ``len(hyper.coef)`` columns).
    """
    D = _check_distances(D, "D", square=True)
    y = _check_targets(y, D.shape[0])
    H = _basis(H, len(y))[:, :len(hyper.coef)]
    K = otmann_kernel(D, hyper.beta, hyper.signal_var) + hyper.noise_var * np.eye(len(y))
    try:
        factor = linalg.cho_factor(K, lower=True)
    except linalg.LinAlgError:
        return -math.inf
    logdet = 2.0 * float(np.log(np.diag(factor[0])).sum())
    if not restricted:
        r = y - H @ np.asarray(hyper.coef)
        quad = float(r @ linalg.cho_solve(factor, r))
        return -0.5 * quad - 0.5 * logdet - 0.5 * len(y) * math.log(2 * math.pi)
    KH = linalg.cho_solve(factor, H)
    HKH = H.T @ KH
    b = np.linalg.solve(HKH, KH.T @ y)
    r = y - H @ b
    quad = float(r @ linalg.cho_solve(factor, r))
    logdet_h = float(np.linalg.slogdet(HKH)[1])
    return -0.5 * quad - 0.5 * logdet - 0.5 * logdet_h - 0.5 * (len(y) - H.shape[1]) * math.log(2 * math.pi)


def _profile(w: np.ndarray, Ht: np.ndarray, yt: np.ndarray, ratios: np.ndarray, restricted: bool = True):
    """Log likelihood (sigma_f^2 maximised; b integrated out if ``restricted``, else plugged in)
    for each ratio, given the eigenpairs of C_beta (Ht = Q^T H, yt = Q^T y); also the GLS
    coefficients and sigma_f^2."""
    n, p = len(w), Ht.shape[1]
    den = w[None, :] + ratios[:, None]
    ok = den.min(axis=1) > _EIG_FLOOR
    den = np.where(den > _EIG_FLOOR, den, 1.0)
    W = 1.0 / den
    HAH = np.einsum("lk,kp,kq->lpq", W, Ht, Ht)
    HAy = np.einsum("lk,kp,k->lp", W, Ht, yt)
    HAH += 1e-12 * np.eye(Ht.shape[1])
    coef = np.linalg.solve(HAH, HAy[..., None])[..., 0]
    r = yt[None, :] - coef @ Ht.T
    quad = np.maximum((W * r * r).sum(axis=1), 1e-300)
    logdet = np.log(den).sum(axis=1)
    if restricted:
        m = n - p
        var = quad / m
        ll = -0.5 * m * np.log(2 * math.pi * var) - 0.5 * logdet - 0.5 * np.linalg.slogdet(HAH)[1] - 0.5 * m
    else:
        var = quad / n
        ll = -0.5 * n * np.log(2 * math.pi * var) - 0.5 * logdet - 0.5 * n
    return np.where(ok, ll, -np.inf), coef, var


def beta_bounds_for(D: Any) -> tuple[float, float]:
    r"""Bounds of :math:`\beta` in units of the data's distance scale: the length scale
    :math:`1/\beta` lies between :math:`q_{05}/3` and :math:`2 q_{95}`, the 5 % and 95 %
    quantiles of the positive off-diagonal distances (clamped to :data:`BETA_BOUNDS`).
    Shorter length scales make every kernel value between distinct models ~0 (the fit
    then interpolates the data with zero noise); longer ones make the kernel flat."""
    D = np.asarray(D, dtype=np.float64)
    v = D[np.triu_indices(len(D), 1)]
    v = v[v > 0]
    if len(v) < 2:
        return BETA_BOUNDS
    lo = BETA_SCALE[0] / float(np.quantile(v, 0.95))
    hi = BETA_SCALE[1] / float(np.quantile(v, 0.05))
    lo = min(max(lo, BETA_BOUNDS[0]), BETA_BOUNDS[1] / 10)
    return lo, min(max(hi, lo * 10), BETA_BOUNDS[1])


def fit_hyperparameters(D: Any, y: Any, H: Any = None, beta_bounds: tuple[float, float] | None = None,
                        ratio_bounds: tuple[float, float] = RATIO_BOUNDS,
                        restricted: bool = True) -> Hyperparameters:
    r"""Maximise the log marginal likelihood :math:`\ell(\beta, \lambda)` (module docstring).

    :math:`\sigma_f^2` is maximised in closed form; the mean's coefficients :math:`b` are
    integrated out (``restricted``, the default) or plugged in (the profile likelihood), and
    either way returned as their generalised least-squares estimate. :math:`\lambda` is
    searched on a log grid of ``_RATIO_GRID`` values in ``ratio_bounds`` for each
    :math:`\beta` (one ``eigh`` of :math:`\exp(-\beta \bar D)` serves the whole grid);
    :math:`\beta` on a log grid of ``_BETA_GRID`` values in ``beta_bounds``, then refined by
    a bounded scalar search between the grid neighbours of the best value.

    Parameters
    ----------
    D : array (n, n), float
        Normalised OTMANN distances among the finished models (symmetrised here).
    y : array (n,), float
        Their (possibly warped) validation accuracies.
    H : array (n, p), optional
        Basis of the mean (default: a constant).

    Returns
    -------
    Hyperparameters
        With ``log_likelihood`` the value reached (equal to :func:`log_marginal_likelihood`
        with the same ``restricted``).
    """
    D = _check_distances(D, "D", square=True)
    y = _check_targets(y, D.shape[0])
    H = _basis(H, len(y))
    if len(y) < H.shape[1] + 1:
        raise ValueError(f"fitting needs at least {H.shape[1] + 1} models")
    D = (D + D.T) / 2
    if beta_bounds is None:
        beta_bounds = beta_bounds_for(D)
    ratios = np.geomspace(*ratio_bounds, _RATIO_GRID)

    def best_for(log_beta: float) -> tuple[float, tuple[float, ...], float, float]:
        w, Q = np.linalg.eigh(np.exp(-math.exp(log_beta) * D))
        ll, coef, var = _profile(w, Q.T @ H, Q.T @ y, ratios, restricted)
        i = int(np.argmax(ll))
        return float(ll[i]), tuple(float(c) for c in coef[i]), float(var[i]), float(ratios[i])

    grid = np.linspace(math.log(beta_bounds[0]), math.log(beta_bounds[1]), _BETA_GRID)
    results = [best_for(b) for b in grid]
    i = int(np.argmax([r[0] for r in results]))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    found = optimize.minimize_scalar(lambda b: -best_for(b)[0], bounds=(lo, hi), method="bounded",
                                     options={"xatol": 0.05})
    log_beta = float(found.x) if found.success and -found.fun > results[i][0] else float(grid[i])
    ll, coef, var, ratio = best_for(log_beta)
    if not math.isfinite(ll):
        raise ValueError("no kernel in the bounds is positive definite on these distances")
    return Hyperparameters(beta=math.exp(log_beta), signal_var=var, noise_var=ratio * var, coef=coef,
                           log_likelihood=ll)


class NormalScores:
    r"""Output warping by normal scores: :math:`z_i = \Phi^{-1}((r_i - \tfrac12)/n)`, :math:`r_i`
    the (average) rank of :math:`y_i`.

    Accuracies are far from Gaussian (failed trainings sit at chance level, 0.1, far below
    a tight cluster of good models); a GP on the normal scores is not dragged by those
    outliers (a rank-based output warping, as in Snelson et al. 2004 and HEBO's output
    transforms). :meth:`inverse` maps z back piecewise-linearly through the knots
    :math:`(z_i, y_i)`, extended linearly beyond the extremes (slope of the outer tenth),
    so predictions may exceed the best model.
    """

    def __init__(self, y: Any):
        y = np.asarray(y, dtype=np.float64)
        z = stats.norm.ppf((stats.rankdata(y) - 0.5) / len(y))
        knots_z, where = np.unique(z, return_inverse=True)
        knots_y = np.bincount(where, weights=y) / np.bincount(where)
        self.z, self.knots_z, self.knots_y = z, knots_z, knots_y

    def inverse(self, z: Any) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        kz, ky = self.knots_z, self.knots_y
        out = np.interp(z, kz, ky)
        if len(kz) < 2:
            return out
        k = max(1, len(kz) // 10)
        lo_slope = (ky[k] - ky[0]) / (kz[k] - kz[0])
        hi_slope = (ky[-1] - ky[-1 - k]) / (kz[-1] - kz[-1 - k])
        out = np.where(z < kz[0], ky[0] + (z - kz[0]) * lo_slope, out)
        return np.where(z > kz[-1], ky[-1] + (z - kz[-1]) * hi_slope, out)


class Logit:
    r"""Output warping by the logit: :math:`z = \log(y / (1 - y))`, :math:`y` clipped to
    :math:`[\epsilon, 1 - \epsilon]`, :math:`\epsilon = 10^{-4}`. Accuracies live in (0, 1) and
    saturate near 1; the logit spreads the saturated top and maps any latent value back into
    (0, 1). Unlike rank-based warps, the transform is fixed: it does not depend on which
    models are finished, so predictions made from different populations (or leave-one-out
    folds) are on one scale, and :meth:`inverse` (the sigmoid) is strictly monotone."""

    EPS = 1e-4

    def __init__(self, y: Any):
        y = np.clip(np.asarray(y, dtype=np.float64), self.EPS, 1 - self.EPS)
        self.z = np.log(y / (1 - y))

    def inverse(self, z: Any) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def expected_improvement(mean: Any, std: Any, best: float, xi: float = 0.0) -> np.ndarray:
    r"""Expected improvement of a maximisation over the incumbent ``best``:

    .. math::

        \mathrm{EI} = (m - y^+ - \xi)\,\Phi(z) + s\,\varphi(z), \quad z = (m - y^+ - \xi)/s,

    :math:`\max(m - y^+ - \xi, 0)` where :math:`s = 0`. Always :math:`\ge 0`; it grows with
    the mean and, for a given mean, with the standard deviation.

    Examples
    --------
    >>> expected_improvement([0.9, 0.9, 0.8], [0.0, 0.05, 0.05], best=0.85).round(4).tolist()
    [0.05, 0.0542, 0.0042]
    """
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    gain = m - best - xi
    out = np.maximum(gain, 0.0)
    pos = s > 0
    if np.any(pos):
        z = gain[pos] / s[pos]
        out = out.copy() if out.ndim else np.array(out)
        out[pos] = gain[pos] * stats.norm.cdf(z) + s[pos] * stats.norm.pdf(z)
    return np.maximum(out, 0.0)


class OtmannGP:
    """GP regression of accuracy on normalised OTMANN distances (estimator contract).

    Parameters
    ----------
    warp : "logit" | "normal" | bool, default "logit"
        Fit the GP to the logits of the accuracies (:class:`Logit`; True means the same) or
        to their normal scores (:class:`NormalScores`) and map predictions back; False
        models the accuracies as they are.
    restricted : bool, default True
        Fit the hyperparameters by the marginal likelihood with the mean's coefficients
        integrated out, and count their uncertainty in the predictive variance (module
        docstring); False plugs in their estimate (the profile likelihood).
    fit_size : int, default :data:`FIT_SIZE`
        Above this many models, hyperparameters are fitted on a random subset of this size.
    random_state : int, default 0
        Seed of that subset.
    hyperparameters : Hyperparameters, optional
        Use these instead of fitting (tests, known answers); on the warped scale if ``warp``.

    Attributes (after :meth:`fit`)
    ----------
    hyperparameters_ : Hyperparameters
    n_models_ : int
    """

    def __init__(self, warp: str | bool = "logit", fit_size: int = FIT_SIZE, random_state: int = 0,
                 hyperparameters: Hyperparameters | None = None, restricted: bool = True):
        self.warp = warp
        self.restricted = restricted
        self.fit_size = fit_size
        self.random_state = random_state
        self.hyperparameters = hyperparameters

    def fit(self, D: Any, y: Any, H: Any = None) -> "OtmannGP":
        """Fit on the finished models only.

        D (n, n): normalised OTMANN distances; y (n,): accuracies; H (n, p): mean basis
        (default a constant; :func:`predict_candidates` uses ``[1, log10(params + 1)]``).
        """
        D = _check_distances(D, "D", square=True)
        y = _check_targets(y, D.shape[0])
        H = _basis(H, len(y))
        if self.fit_size < 2:
            raise ValueError(f"fit_size must be at least 2, got {self.fit_size!r}")
        if self.warp not in (True, False, "logit", "normal"):
            raise ValueError(f"warp must be 'logit', 'normal' or a bool, got {self.warp!r}")
        self.warp_ = (NormalScores(y) if self.warp == "normal" else Logit(y)) if self.warp else None
        t = self.warp_.z if self.warp else y
        D = (D + D.T) / 2
        if self.hyperparameters is not None:
            hyper = self.hyperparameters
        else:
            rows = np.arange(len(y))
            if len(y) > self.fit_size:
                rows = np.sort(np.random.RandomState(self.random_state).choice(len(y), self.fit_size, replace=False))
            with _one_blas_thread():
                hyper = fit_hyperparameters(D[np.ix_(rows, rows)], t[rows], H[rows],
                                            restricted=self.restricted)
        self.D_, self.t_, self.H_, self.hyperparameters_, self.n_models_ = D, t, H, hyper, len(y)
        self._factors: dict[bytes, tuple] = {}
        # b's uncertainty enters the variance when b was estimated under the integrated likelihood:
        # (H^T A^-1 H)^-1 over the models b was estimated on (sigma_f^2 applied in predict_latent)
        self.coef_cov_ = None
        if self.restricted and self.hyperparameters is None:
            factor = self._cholesky(rows)
            LH = linalg.solve_triangular(factor[0], H[rows, :len(hyper.coef)], lower=True)
            self.coef_cov_ = np.linalg.pinv(LH.T @ LH)  # pinv: a basis column that does not vary
        return self

    def _cholesky(self, columns: np.ndarray):
        """Cholesky factor of A = exp(-beta D) + lambda I over the training models ``columns``."""
        h = self.hyperparameters_
        A = np.exp(-h.beta * self.D_[np.ix_(columns, columns)])
        ratio = h.noise_var / h.signal_var
        jitter = 0.0
        while True:  # A subset of a positive definite A is positive definite; jitter is a guard
            try:
                return linalg.cho_factor(A + (ratio + jitter) * np.eye(len(columns)), lower=True)
            except linalg.LinAlgError:
                jitter = max(jitter * 10, 1e-8)

    def _factor(self, columns: np.ndarray):
        key = columns.tobytes()
        if key not in self._factors:
            h = self.hyperparameters_
            factor = self._cholesky(columns)
            Hc = self.H_[columns, :len(h.coef)]
            resid = self.t_[columns] - Hc @ np.asarray(h.coef)
            LH = linalg.solve_triangular(factor[0], Hc, lower=True)  # L^-1 H: H^T A^-1 c = LH^T (L^-1 c)
            if len(self._factors) >= 256:
                self._factors.pop(next(iter(self._factors)))
            self._factors[key] = (factor, linalg.cho_solve(factor, resid), LH)
        return self._factors[key]

    def predict_latent(self, D_cross: Any, columns: Sequence[int] | None = None,
                       H_cross: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent f on the GP's own (warped) scale.

        Parameters
        ----------
        D_cross : array (m, c)
            Normalised OTMANN distances from m networks to the training models ``columns``.
        columns : int sequence of length c, optional
            Training models to condition on (default all n, in order).
        H_cross : array (m, p), optional
            The networks' mean basis (default a constant; must match :meth:`fit`'s H).
        """
        columns = np.arange(self.n_models_) if columns is None else np.asarray(columns, dtype=np.intp)
        D_cross = _check_distances(D_cross, "D_cross")
        if D_cross.shape[1] != len(columns):
            raise ValueError(f"D_cross has {D_cross.shape[1]} columns for {len(columns)} training models")
        H_cross = _basis(H_cross, D_cross.shape[0])
        if H_cross.shape[1] != self.H_.shape[1]:
            raise ValueError(f"H_cross has {H_cross.shape[1]} columns, the fit had {self.H_.shape[1]}")
        h = self.hyperparameters_
        factor, alpha, LH = self._factor(columns)
        C = np.exp(-h.beta * D_cross)
        h_cross = H_cross[:, :len(h.coef)]
        mean = h_cross @ np.asarray(h.coef) + C @ alpha
        v = linalg.solve_triangular(factor[0], C.T, lower=True)
        reduced = np.clip(1.0 - (v * v).sum(axis=0), 0.0, None)
        if self.coef_cov_ is not None:  # + r^T (H^T A^-1 H)^-1 r, r = h - H^T A^-1 c (R&W eq. 2.42)
            r = h_cross - v.T @ LH
            reduced = reduced + np.einsum("mp,pq,mq->m", r, self.coef_cov_, r)
        return mean, np.sqrt(h.signal_var * reduced)

    def predict(self, D_cross: Any, columns: Sequence[int] | None = None,
                H_cross: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted accuracy and its standard deviation at new networks, shape (m,) each.

        Without warping these are the posterior mean :math:`m` and sd :math:`s` (module
        docstring). With warping, :math:`g^{-1}(m)` (the predictive median) and
        :math:`(g^{-1}(m + s) - g^{-1}(m - s)) / 2`.
        """
        mean, std = self.predict_latent(D_cross, columns, H_cross)
        if not self.warp:
            return mean, std
        inv = self.warp_.inverse
        return inv(mean), np.maximum((inv(mean + std) - inv(mean - std)) / 2, 0.0)


# ------------------------------------------------------------------ candidates of an experiment

ModelDistances = Callable[[list[dict]], np.ndarray]


def _graph(spec: Any):
    from remap_tb import otmann

    try:
        return otmann.graph_from_spec(spec)
    except Exception:  # an invalid candidate (ablation) has no graph: no prediction
        return None


def _log_params_basis(params: Sequence[int]) -> np.ndarray:
    """The mean's basis ``[1, log10(params + 1)]`` (accuracy grows roughly with log size)."""
    return np.column_stack([np.ones(len(params)), np.log10(np.asarray(params, dtype=np.float64) + 1.0)])


def predict_candidates(models: Sequence[dict], candidates: Sequence[dict], model_distances: ModelDistances,
                       min_params: int | None = None, max_params: int | None = None,
                       neighbours: int = NEIGHBOURS, min_models: int = MIN_MODELS,
                       gp: OtmannGP | None = None, parent_specs: dict[str, Any] | None = None
                       ) -> tuple[list[dict | None], dict]:
    """Predicted accuracy of each candidate from the finished models of its experiment.

    Parameters
    ----------
    models : list of dict
        The experiment's finished models: ``{"id", "spec", "accuracy", "params"}``.
    candidates : list of dict
        ``generate`` candidates (``spec``, ``parent``).
    model_distances : callable (models) -> array (n, n)
        Normalised OTMANN distances among ``models`` (the plugin's cached ones).
    min_params, max_params : int, optional
        The budget: the incumbent of EI is the best finished model inside it (all
        finished models when none is).
    neighbours : int
        A candidate is conditioned on this many finished models nearest to its parent
        when the experiment has more (all of them otherwise).
    gp : OtmannGP, optional
        The (unfitted) estimator to use.
    parent_specs : dict, optional
        Parent id -> spec, for parents that are not among ``models`` (their nearest
        finished models are found from their own distance row; without a spec, from
        their first candidate's).

    Returns
    -------
    (predicted, surrogate)
        ``predicted[i]`` is ``{"accuracy", "std", "ei"}`` or None (too few models, or a
        candidate without a usable spec); ``surrogate`` is the response's block
        ``{"n_models", "ready", "reason", "best"}``.
    """
    with _one_blas_thread():
        return _predict_candidates(models, candidates, model_distances, min_params, max_params, neighbours,
                                   min_models, gp, parent_specs)


#: fitted GPs (with the model-model distances, Cholesky factors and model graphs) of the last
#: few populations, keyed by their finished models' (id, accuracy, params): candidates never
#: change the fit, so repeated generate calls on one population skip it
_FITS: dict[tuple, dict] = {}
_FIT_CACHE_SIZE = 4
_FITS_LOCK = threading.Lock()  # route calls run on TensorBoard's request threads


def _predict_candidates(models, candidates, model_distances, min_params, max_params, neighbours, min_models,
                        gp, parent_specs) -> tuple[list[dict | None], dict]:
    n = len(models)
    info: dict[str, Any] = {"n_models": n, "ready": False, "reason": None, "best": None}
    none: list[dict | None] = [None] * len(candidates)
    if n < min_models:
        info["reason"] = (f"{n} finished model{'' if n == 1 else 's'} with a validation accuracy in this "
                          f"experiment; predictions start at {min_models}")
        return none, info
    from remap_tb import otmann

    y = np.array([float(m["accuracy"]) for m in models])
    params = [m.get("params") for m in models]
    with_params = all(isinstance(p, int) and p >= 0 for p in params)
    inside = [i for i, p in enumerate(params)
              if p is not None and (min_params is None or p >= min_params) and (max_params is None or p <= max_params)]
    best = float(y[inside].max()) if inside else float(y.max())
    key = (tuple((str(m.get("id")), float(m["accuracy"]), m.get("params")) for m in models), gp is None)
    with _FITS_LOCK:
        entry = _FITS.pop(key, None) if gp is None else None
        if entry is not None:
            _FITS[key] = entry  # most recently used last
    if entry is None:
        D = np.asarray(model_distances(list(models)), dtype=np.float64)
        H = _log_params_basis(params) if with_params else None
        fitted = (gp or OtmannGP()).fit(D, y, H)
        entry = {"D": fitted.D_, "gp": fitted, "graphs": {}}  # D_: a symmetrised copy
        if gp is None:
            with _FITS_LOCK:
                _FITS[key] = entry
                while len(_FITS) > _FIT_CACHE_SIZE:
                    _FITS.pop(next(iter(_FITS)))
    D, gp = entry["D"], entry["gp"]
    info.update(ready=True, best=best)

    graphs = [_graph(c.get("spec")) for c in candidates]
    scored = [i for i, g in enumerate(graphs) if g is not None
              and (not with_params or isinstance(candidates[i].get("params"), int))]
    if not scored:
        return none, info
    model_graphs: dict[int, Any] = entry["graphs"]

    def model_graph(j: int):
        if j not in model_graphs:
            model_graphs[j] = otmann.graph_from_spec(models[j]["spec"])
        return model_graphs[j]

    # Which finished models each candidate is conditioned on.
    if n <= neighbours:
        columns_of = {i: np.arange(n) for i in scored}
    else:
        index = {m.get("id"): j for j, m in enumerate(models)}
        parents = sorted({str(candidates[i].get("parent")) for i in scored})
        rows: dict[str, np.ndarray] = {}
        missing = []
        for p in parents:
            if p in index:
                rows[p] = D[index[p]]
            else:
                missing.append(p)
        if missing:  # a parent that is not a finished model: its own row against all of them
            first = {}
            for i in scored:
                first.setdefault(str(candidates[i].get("parent")), i)
            specs = [(parent_specs or {}).get(p) for p in missing]
            sources = [_graph(spec) if spec is not None else None for spec in specs]
            sources = [g if g is not None else graphs[first[p]] for g, p in zip(sources, missing)]
            r = np.repeat(np.arange(len(missing)), n)
            c = np.tile(np.arange(n), len(missing))
            _, dn = otmann.distance_pairs_both(sources, [model_graph(j) for j in range(n)], r, c)
            for k, p in enumerate(missing):
                rows[p] = dn[k * n:(k + 1) * n]
        near = {p: np.sort(np.argsort(row, kind="stable")[:neighbours]) for p, row in rows.items()}
        columns_of = {i: near[str(candidates[i].get("parent"))] for i in scored}

    used = sorted({int(j) for i in scored for j in columns_of[i]})
    pos = {j: k for k, j in enumerate(used)}
    r = np.concatenate([np.full(len(columns_of[i]), k) for k, i in enumerate(scored)])
    c = np.concatenate([[pos[int(j)] for j in columns_of[i]] for i in scored]).astype(np.int64)
    _, dn = otmann.distance_pairs_both([graphs[i] for i in scored], [model_graph(j) for j in used], r, c)

    predicted = list(none)
    groups: dict[bytes, list[int]] = {}
    for k, i in enumerate(scored):
        groups.setdefault(columns_of[i].tobytes(), []).append(k)
    starts = np.concatenate([[0], np.cumsum([len(columns_of[i]) for i in scored])])
    for ks in groups.values():
        columns = columns_of[scored[ks[0]]]
        cross = np.stack([dn[starts[k]:starts[k + 1]] for k in ks])
        H_cross = _log_params_basis([candidates[scored[k]]["params"] for k in ks]) if with_params else None
        mean, std = gp.predict(cross, columns, H_cross)
        ei = expected_improvement(mean, std, best)
        for k, m_, s_, e_ in zip(ks, mean, std, ei):
            predicted[scored[k]] = {"accuracy": float(m_), "std": float(s_), "ei": float(e_)}
    return predicted, info


def local_pool(models: Sequence[dict], parents: Sequence[str], positions: dict[str, tuple[float, float]],
               size: int = POOL_SIZE, best_share: float = 0.1, seed: int = 0) -> list[dict]:
    """At most ``size`` of ``models``: what a request about ``parents`` needs from a large experiment.

    The surrogate conditions each candidate on the finished models nearest to its
    parent (:data:`NEIGHBOURS`) and needs the best ones for the incumbent of EI; the
    model-model OTMANN matrix of all n (what :func:`predict_candidates` asks for) is
    what a large experiment cannot afford (the map keeps exact distances only up to
    a few thousand models). So the pool is the ``best_share`` most accurate models,
    then the models nearest to any parent on the structural map (``positions``:
    model id -> (x, y), the map's MDS coordinates; ``parents`` by model id), then, when
    the map has no positions yet, a seeded random sample. Order is kept.
    """
    if len(models) <= size:
        return list(models)
    chosen: dict[int, None] = {}
    by_accuracy = sorted(range(len(models)), key=lambda i: -float(models[i]["accuracy"]))
    for i in by_accuracy[:max(1, int(size * best_share))]:
        chosen[i] = None
    anchors = np.array([positions[p] for p in parents if p in positions], dtype=np.float64).reshape(-1, 2)
    placed = [i for i in range(len(models)) if models[i]["id"] in positions]
    if len(anchors) and placed:
        xy = np.array([positions[models[i]["id"]] for i in placed], dtype=np.float64)
        gap = np.min(((xy[:, None, :] - anchors[None, :, :]) ** 2).sum(axis=2), axis=1)
        for j in np.argsort(gap, kind="stable"):
            if len(chosen) >= size:
                break
            chosen.setdefault(placed[j], None)
    rest = [i for i in np.random.RandomState(seed).permutation(len(models)) if i not in chosen]
    for i in rest[:max(0, size - len(chosen))]:
        chosen[int(i)] = None
    return [models[i] for i in sorted(chosen)]


def finished_models(snapshot: Any, runs: Sequence[str]) -> tuple[str | None, list[dict]]:
    """The experiment of ``runs`` and its finished models, as :func:`predict_candidates` takes them.

    ``snapshot`` is a ``reader.Snapshot``. A finished model is a run in state ``done`` with a
    validation accuracy. Returns ``(None, [])`` when the runs are in no or several experiments.
    """
    from remap_tb import metadata

    experiments = {snapshot.experiment_of.get(run) for run in runs if run in snapshot.models}
    if len(experiments) != 1 or None in experiments:
        return None, []
    (experiment,) = experiments
    models = []
    for data in snapshot.experiments.get(experiment, []):
        accuracy = data.metric("val_accuracy")
        if data.state != metadata.DONE or accuracy is None or not math.isfinite(accuracy):
            continue
        params = data.model.get("params")
        models.append({"id": data.id, "run": data.run, "spec": data.spec, "accuracy": float(accuracy),
                       "params": params if isinstance(params, int) else None})
    return experiment, models
