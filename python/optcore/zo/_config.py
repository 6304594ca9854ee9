"""The options of a zeroth-order run: the methods and their ``options`` keys, ``bounds`` and
``x0`` normalisation, and every constant of a run with its default resolved (the dict the core's
``ZoState`` reads)."""

from __future__ import annotations

import numpy as np

from .._validation import (
    as_float_array,
    check_finite,
    check_options,
    nonnegative_scalar,
    positive_int,
    positive_scalar,
    seed_from_rng,
)

_GRADIENT_OPTS = ("scheme", "lr_grow", "lr_shrink", "step0")
#: The methods and their ``options`` keys (every constant of a method is an option).
METHODS = {
    "gaussian": (*_GRADIENT_OPTS, "momentum"),
    "sphere": (*_GRADIENT_OPTS, "momentum"),
    "cge": (*_GRADIENT_OPTS, "momentum", "n_coords"),
    "signsgd": (*_GRADIENT_OPTS, "directions"),
    "adamm": (*_GRADIENT_OPTS, "directions", "beta1", "beta2", "eps"),
    "perturbed": (*_GRADIENT_OPTS, "perturbation"),
    "cbo": ("particles", "alpha", "lambda", "sigma", "dt", "noise", "variant", "sigma_decay", "init_std"),
    "rank": ("m", "k", "decay"),
}


def _scale(x: np.ndarray) -> float:
    """``max(1, |x|_inf)``, without a temporary of the size of ``x``."""
    return max(1.0, abs(float(x.max())), abs(float(x.min())))


def _normalize_bounds(bounds, d: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    if bounds is None:  # read-only views of one infinity: no d-vectors
        return np.broadcast_to(np.array(-np.inf), (d,)), np.broadcast_to(np.array(np.inf), (d,))
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):  # scipy.optimize.Bounds
        lb, ub = bounds.lb, bounds.ub
    else:
        try:
            arr = np.asarray(bounds, dtype=object)
        except Exception:
            arr = None
        if arr is not None and arr.ndim == 2 and arr.shape == (d, 2):  # [(lo, hi), ...]
            lb = [-np.inf if b[0] is None else b[0] for b in bounds]
            ub = [np.inf if b[1] is None else b[1] for b in bounds]
        elif arr is not None and arr.ndim >= 1 and len(arr) == 2:  # (lb, ub), scalars or arrays
            lb, ub = bounds
            lb = -np.inf if lb is None else lb
            ub = np.inf if ub is None else ub
        else:
            raise ValueError(
                "`bounds` must be None, a scipy.optimize.Bounds, a pair (lb, ub) of scalars or arrays, "
                f"or a sequence of d = {d} (lo, hi) pairs."
            )
    try:
        lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), (d,)).copy()
        ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), (d,)).copy()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"`bounds` must give d = {d} lower and upper bounds: {exc}") from None
    if np.isnan(lb).any() or np.isnan(ub).any() or (lb > ub).any():
        raise ValueError("`bounds` must satisfy lower <= upper with no NaN.")
    if (lb == np.inf).any() or (ub == -np.inf).any():
        raise ValueError(
            "`bounds`: every lower bound must be < +inf and every upper bound > -inf (use None or "
            "-inf/+inf for a free side), with lower <= upper."
        )
    return lb, ub


def _opt_int(opts, key, default, minimum=1):
    v = opts.get(key, default)
    return positive_int(v, f"options[{key!r}]", minimum=minimum)


def _opt_choice(opts, key, default, choices):
    v = opts.get(key, default)
    if v not in choices:
        raise ValueError(f"options[{key!r}] must be one of {list(choices)}; got {v!r}.")
    return v


def _any_finite(side: np.ndarray) -> bool:
    """Whether a side of the bounds has a finite entry, without a d-sized temporary for the
    broadcast (stride-0) side of absent bounds."""
    if side.ndim == 1 and side.size and side.strides[0] == 0:
        side = side[:1]
    return bool(np.isfinite(side).any())


def _config(method, x, *, bounds, rng, lr, mu, q, xtol, nan_as_inf, options) -> dict:
    """Every constant of a run, defaults resolved (see the Notes of :func:`minimize`)."""
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    method = method.lower()
    opts = check_options(options, METHODS[method], method)
    d = x.size
    dtype = x.dtype
    eps = float(np.finfo(dtype).eps)
    scale = _scale(x)
    lower, upper = _normalize_bounds(bounds, d, dtype)
    free = not (_any_finite(lower) or _any_finite(upper))
    cfg = {
        # No finite bound: empty sides (no d-vectors of infinities, nor d Python floats).
        "lower": [] if free else lower.tolist(),
        "upper": [] if free else upper.tolist(),
        "seed": seed_from_rng(rng, high=2**64),
        "nan_as_inf": bool(nan_as_inf),
        "xtol": (1e-10 if dtype == np.float64 else 1e-6) if xtol is None else nonnegative_scalar(xtol, "xtol"),
        "lr": None if lr is None else nonnegative_scalar(lr, "lr"),
        "step0": 0.1 * scale,
        "grow": 1.25,
        "shrink": 0.5,
    }
    if method in ("cbo", "rank"):
        if q is not None:
            raise ValueError(f"`q` does not apply to method={method!r}.")
    if method == "cbo":
        if mu is not None or lr is not None:
            raise ValueError("`mu` and `lr` do not apply to method='cbo' (see its options).")
        finite = np.isfinite(lower).all() and np.isfinite(upper).all()
        init_std = 0.25 * float(np.mean(upper - lower)) if finite else scale
        if not init_std > 0:  # a box of zero width (lower == upper): spread as if unbounded
            init_std = scale
        noise = _opt_choice(opts, "noise", "anisotropic", ("anisotropic", "isotropic"))
        variant = _opt_choice(opts, "variant", "standard", ("standard", "hopping"))
        lam = positive_scalar(opts.get("lambda", 1.0), "options['lambda']")
        dt = positive_scalar(opts.get("dt", 0.1), "options['dt']")
        if not lam * dt < 2:
            # The drift X <- X - lambda dt (X - v) overshoots the consensus and the particles
            # diverge once lambda dt >= 2.
            raise ValueError(
                f"options['lambda'] * options['dt'] must be < 2 (the Euler step diverges); got "
                f"lambda = {lam!r}, dt = {dt!r}. Use dt < {2 / lam:g}."
            )
        init_std = positive_scalar(opts.get("init_std", init_std), "options['init_std']")
        if variant == "hopping":
            sigma = init_std
        else:
            # The expected squared spread shrinks by 5% per step:
            # (1 - lam dt)^2 + sigma^2 dt (x d if isotropic) = 0.95.
            s2 = max(0.95 - (1 - lam * dt) ** 2, 1e-3) / dt
            sigma = float(np.sqrt(s2 / (d if noise == "isotropic" else 1)))
        cfg.update(
            kind="cbo",
            particles=_opt_int(opts, "particles", 50),
            alpha=positive_scalar(opts.get("alpha", 1e3), "options['alpha']"),
            **{"lambda": lam},
            sigma=positive_scalar(opts.get("sigma", sigma), "options['sigma']"),
            dt=dt,
            noise=noise,
            hopping=variant == "hopping",
            sigma_decay=positive_scalar(
                opts.get("sigma_decay", 0.98 if variant == "hopping" else 1.0), "options['sigma_decay']"
            ),
            init_std=init_std,
        )
        return cfg
    if method == "rank":
        m = _opt_int(opts, "m", 8, minimum=2)
        k = _opt_int(opts, "k", m)
        if k > m:
            raise ValueError(f"options['k'] must be <= options['m'] = {m}; got {k}.")
        cfg.update(
            kind="rank",
            m=m,
            k=k,
            mu=0.01 * scale if mu is None else positive_scalar(mu, "mu"),
            decay=positive_scalar(opts.get("decay", 1.0), "options['decay']"),
        )
        if lr is None:
            cfg["lr"] = 0.1 * scale
        return cfg
    # gradient methods
    scheme = _opt_choice(opts, "scheme", "central" if method == "perturbed" else "forward", ("forward", "central"))
    if mu is None:
        mu = (np.sqrt(eps) if scheme == "forward" else eps ** (1 / 3)) * scale
    mu = positive_scalar(mu, "mu")
    directions = {"gaussian": "gaussian", "sphere": "sphere", "cge": "coordinates", "perturbed": "sphere"}.get(method)
    if directions is None:
        directions = _opt_choice(opts, "directions", "sphere", ("sphere", "gaussian"))
    if method == "cge" and q is not None:
        raise ValueError("method='cge' takes options['n_coords'] (coordinates per step), not `q`.")
    q = positive_int(min(10, d) if q is None else q, "q")
    momentum = nonnegative_scalar(opts.get("momentum", 0.0), "options['momentum']")
    if not momentum < 1:
        raise ValueError(f"options['momentum'] must be in [0, 1); got {momentum!r}.")
    cfg.update(
        kind="gradient",
        directions=directions,
        scheme=scheme,
        q=q,
        n_coords=_opt_int(opts, "n_coords", d) if method == "cge" else 0,
        mu=mu,
        update={"signsgd": "sign", "adamm": "adamm"}.get(method, "momentum" if momentum > 0 else "plain"),
        momentum=momentum,
        beta1=nonnegative_scalar(opts.get("beta1", 0.9), "options['beta1']"),
        beta2=nonnegative_scalar(opts.get("beta2", 0.999), "options['beta2']"),
        eps=nonnegative_scalar(opts.get("eps", 1e-12), "options['eps']"),
        perturbation=nonnegative_scalar(opts.get("perturbation", 0.0), "options['perturbation']")
        if method == "perturbed"
        else None,
    )
    if not (cfg["beta1"] < 1 and cfg["beta2"] < 1):
        raise ValueError("options['beta1'] and options['beta2'] must be in [0, 1).")
    cfg["step0"] = positive_scalar(opts.get("step0", cfg["step0"]), "options['step0']")
    cfg["grow"] = positive_scalar(opts.get("lr_grow", 1.25), "options['lr_grow']")
    cfg["shrink"] = positive_scalar(opts.get("lr_shrink", 0.5), "options['lr_shrink']")
    if not (cfg["grow"] >= 1 and cfg["shrink"] < 1):
        raise ValueError("options['lr_grow'] must be >= 1 and options['lr_shrink'] < 1.")
    return cfg


def _point(x0, name: str) -> np.ndarray:
    """A starting point ``name``: a finite non-empty 1-D array, float32 kept, else float64."""
    x = as_float_array(x0, name)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array; got shape {x.shape}.")
    check_finite(x, name)
    return np.ascontiguousarray(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)


def _x0(x0) -> np.ndarray:
    return _point(x0, "x0")
