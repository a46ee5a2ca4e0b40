"""LightGBM's C library, called directly for the two things scoring needs from a booster.

Why by hand: ``import lightgbm`` imports scikit-learn whenever it is installed (for its
sklearn wrappers), about 1.9 s of a 2 s import on these machines, and a batch run explains
its top customers with LightGBM's TreeSHAP (``pred_contrib``) — so every ``churnops score``
of a LightGBM champion paid two seconds of start-up for a call that takes milliseconds.
The library the package itself wraps (``lightgbm/lib/lib_lightgbm.so``) exposes the same
call; this module loads it with ctypes, without importing the package, and uses only
``LGBM_BoosterLoadModelFromString``, ``LGBM_BoosterPredictForMat`` and
``LGBM_BoosterFree``. The numbers are LightGBM's own (a test compares them with
``lightgbm.Booster.predict``).
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

PREDICT_RAW_SCORE = 1  # C_API_PREDICT_RAW_SCORE
PREDICT_CONTRIB = 3  # C_API_PREDICT_CONTRIB
DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


@cache
def _library() -> Any:
    """Load ``lib_lightgbm`` from the installed package's folder (the package stays unimported)."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("LightGBM is not installed: pip install lightgbm")
    folder = Path(next(iter(spec.submodule_search_locations)))
    for name in ("lib/lib_lightgbm.so", "lib/lib_lightgbm.dylib", "lib/lib_lightgbm.dll"):
        if (folder / name).exists():
            lib = ctypes.CDLL(str(folder / name))
            lib.LGBM_GetLastError.restype = ctypes.c_char_p
            return lib
    raise ImportError(f"LightGBM's C library is not in {folder / 'lib'}")


def _check(code: int) -> None:
    if code != 0:
        raise RuntimeError(f"LightGBM: {_library().LGBM_GetLastError().decode()}")


class Booster:
    """A LightGBM booster parsed from its model text, predicting through the C API."""

    def __init__(self, model_text: str) -> None:
        lib = _library()
        self._lib = lib
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int(0)
        _check(
            lib.LGBM_BoosterLoadModelFromString(
                ctypes.c_char_p(model_text.encode()),
                ctypes.byref(iterations),
                ctypes.byref(self._handle),
            )
        )
        self.iterations = iterations.value
        # A booster's predictor keeps per-call scratch space: one prediction at a time.
        self._lock = threading.Lock()

    def predict(self, X: np.ndarray, kind: int, num_iteration: int = -1) -> np.ndarray:
        """Return raw scores (``n``) or contributions (``n`` x ``width + 1``, bias last)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        n, width = X.shape
        size = n * (width + 1) if kind == PREDICT_CONTRIB else n
        out = np.empty(size, dtype=np.float64)
        out_len = ctypes.c_int64(0)
        with self._lock:
            _check(
                self._lib.LGBM_BoosterPredictForMat(
                    self._handle,
                    X.ctypes.data_as(ctypes.c_void_p),
                    ctypes.c_int(DTYPE_FLOAT64),
                    ctypes.c_int32(n),
                    ctypes.c_int32(width),
                    ctypes.c_int(1),  # row major
                    ctypes.c_int(kind),
                    ctypes.c_int(0),  # start iteration
                    ctypes.c_int(num_iteration),
                    ctypes.c_char_p(b""),
                    ctypes.byref(out_len),
                    out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                )
            )
        if out_len.value != size:
            raise RuntimeError(f"LightGBM returned {out_len.value} values, expected {size}")
        return out.reshape(n, width + 1) if kind == PREDICT_CONTRIB else out

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._lib.LGBM_BoosterFree(handle)
