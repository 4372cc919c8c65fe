"""Checks on what users hand to a model, with errors that say what was expected and what came."""

import numpy as np

from .errors import InvalidInputError

FLOAT_DTYPES = ("float32", "float64")


def check_float_dtype(dtype, what="dtype"):
    """np.dtype(dtype), which must be float32 or float64: the dtypes every layer computes in."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.name not in FLOAT_DTYPES:
        raise InvalidInputError(f"{what} must be float32 or float64, got {dtype!r}")
    return resolved


def check_batch_size(batch_size, default):
    """``batch_size`` as a positive int (``default`` when None); 0 or 2.5 would loop wrongly."""
    if batch_size is None:
        return default
    whole = isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
    if not whole or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _shape_text(per_sample_shape):
    return "(" + ", ".join(["None", *map(str, per_sample_shape)]) + ")"


def check_features(x, per_sample_shape, dtype, what="x"):
    """x as an array of ``dtype`` shaped (N, *per_sample_shape); per_sample_shape None = any."""
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{what} must be a numeric array, could not convert it: {error}"
        ) from None
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(f"{what} must hold numbers (float or int), got dtype {array.dtype}")
    if array.ndim < 2:
        raise InvalidInputError(
            f"{what} must be a batch shaped (N, ...), got shape {array.shape}"
            + ("" if per_sample_shape is None else f"; expected {_shape_text(per_sample_shape)}")
        )
    if per_sample_shape is not None and array.shape[1:] != tuple(per_sample_shape):
        raise InvalidInputError(
            f"{what}: expected shape {_shape_text(per_sample_shape)}, got {array.shape}"
        )
    # A value too large for ``dtype`` becomes inf, refused below. (Cast only when the dtype
    # differs: the errstate alone costs a third of this check on one image.)
    if array.dtype != dtype:
        with np.errstate(over="ignore"):
            array = array.astype(dtype)
    if array.dtype.kind == "f" and not all_finite(array):
        raise InvalidInputError(f"{what} contains NaN or infinite values")
    return array


#: From this many values all_finite looks at the minimum and the maximum (NaN or ±inf
#: anywhere shows in one of them; no overflow to rule out): 80 µs for the mlp's 1,000 × 784
#: float32 inputs against the sum's 131. Below, the sum's one call is cheaper (1.2 against
#: 2.3 µs for one image).
FINITE_BY_EXTREMES = 32_768


def all_finite(array):
    """Whether no element of a float array is NaN or ±inf, at the cost of one sum in the usual
    case: a NaN or ±inf anywhere makes the sum non-finite, and only a non-finite sum (which a
    huge but finite array can also give, by overflow) pays for the elementwise check. Large
    arrays: their minimum and maximum instead (FINITE_BY_EXTREMES)."""
    if array.size >= FINITE_BY_EXTREMES:
        return bool(np.isfinite(array.min()) and np.isfinite(array.max()))
    return bool(np.isfinite(array.sum()) or np.isfinite(array).all())


def check_targets(y, num_samples, output_shape, sparse, what="y"):
    """Labels (N,) integers in [0, K) when ``sparse`` ((N, T) for a sequence output (T, K));
    otherwise targets shaped (N, *output_shape)."""
    array = np.asarray(y)
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(f"{what} must hold numbers, got dtype {array.dtype}")
    if array.shape[:1] != (num_samples,):
        raise InvalidInputError(
            f"x and {what} must hold the same number of samples: x has {num_samples}, "
            f"{what} has shape {array.shape}"
        )
    if not sparse:
        if array.shape[1:] != tuple(output_shape):
            labels = array.dtype.kind in "iu" and array.shape[1:] == tuple(output_shape[:-1])
            hint = (
                " (integer labels go with loss='sparse_categorical_crossentropy')"
                if labels and output_shape and output_shape[-1] > 1 else ""
            )  # fmt: skip
            raise InvalidInputError(
                f"{what}: expected shape {_shape_text(output_shape)}, got {array.shape}{hint}"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InvalidInputError(f"{what} contains NaN or infinite values")
        return array
    positions = (num_samples, *output_shape[:-1])  # one label per row, or per step
    if array.shape == (*positions, 1):
        array = array[..., 0]
    if array.shape != positions:
        raise InvalidInputError(
            f"{what}: expected integer labels shaped {positions}, got "
            f"shape {array.shape} (one-hot targets go with loss='categorical_crossentropy')"
        )
    if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        raise InvalidInputError(
            f"{what}: labels must be whole numbers, got {array[array != np.round(array)][:3]}"
        )
    num_classes = output_shape[-1]
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise InvalidInputError(
            f"{what}: labels must be in [0, {num_classes}) for a model with {num_classes} "
            f"outputs, got values from {array.min()} to {array.max()}"
        )
    return array.astype(np.intp)
