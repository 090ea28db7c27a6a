"""The points of a sweeps run's data set, for the fitted-line picture of an analysis: drawn with
torch from the run's data params (``sweeps.data``, as the run drew them) and kept in a small
file under ~/.cache/sweeps/points, so that a later analysis of the same data (the sweep's own
closing analysis draws them first) reads them back without importing torch (~2 s)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional

log = logging.getLogger(__name__)

ARRAYS = ("x", "y", "x_val", "y_val")  # training points, then validation points, flattened


def _spec(params: Mapping[str, str]) -> Optional[dict[str, Any]]:
    """The data config and seed a run's params record, or None (not a sweeps run)."""
    try:
        seed = params.get("data.seed", "None")
        return dict(
            slope=float(params["data.slope"]), intercept=float(params["data.intercept"]),
            noise=float(params["data.noise"]), n_train=int(params["data.n_train"]),
            n_val=int(params["data.n_val"]), x_low=float(params["data.x_low"]),
            x_high=float(params["data.x_high"]), normalize=params["data.normalize"] == "True",
            seed=None if seed == "None" else int(seed), train_seed=int(params["train.seed"]))
    except (KeyError, ValueError):
        return None


def _cache_file(spec: dict[str, Any]) -> Path:
    """Named for the spec, the code that draws the points and the torch that runs it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "?"
    code = (Path(__file__).parent / "data.py").read_bytes()
    key = json.dumps([spec, torch_version, hashlib.sha256(code).hexdigest()], sort_keys=True)
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweeps" / "points"
    return root / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".npz")


def points(params: Mapping[str, str]) -> Optional[dict[str, Any]]:
    """x, y (training) and x_val, y_val (validation) of the run's data set as flat float32
    arrays, as ``sweeps.data.make_data`` draws them; None for a run whose params do not say how
    its data was drawn (a foreign run)."""
    import numpy as np

    spec = _spec(params)
    if spec is None:
        return None
    path = _cache_file(spec)
    try:
        with np.load(path) as f:
            return {k: f[k] for k in ARRAYS}
    except (OSError, KeyError, ValueError):
        pass  # not drawn yet, or unreadable: drawn again
    from types import SimpleNamespace

    from sweeps.data import make_data

    d = make_data(SimpleNamespace(**{k: v for k, v in spec.items() if k != "train_seed"}),
                  spec["train_seed"])
    out = {"x": d.x_train.numpy().ravel(), "y": d.y_train.numpy().ravel(),
           "x_val": d.x_val.numpy().ravel(), "y_val": d.y_val.numpy().ravel()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
        np.savez(tmp, **out)
        os.replace(tmp, path)  # whole or not at all, whoever else writes it
    except OSError as err:
        log.debug("points not cached (%s)", err)
    return out
