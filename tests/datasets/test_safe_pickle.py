import builtins
import io
import os
import pickle
import subprocess

import numpy as np
import pytest

from handnet.datasets import DatasetError
from handnet.datasets.safe_pickle import safe_load_pickle


class _Calls:
    """Pickles as a call to ``function(*args)``, the way a malicious file would."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize(
    "function, args, refused_name",
    [
        (os.system, ("touch {marker}",), r"(posix|os)\.system"),
        (builtins.eval, ("open({marker!r}, 'w')",), r"(builtins|__builtin__)\.eval"),
        (subprocess.Popen, (["touch", "{marker}"],), r"(subprocess|commands)\.Popen"),
    ],
    ids=["os.system", "builtins.eval", "subprocess.Popen"],
)
@pytest.mark.parametrize("protocol", [2, 4])
def test_code_execution_globals_are_refused_and_nothing_runs(
    tmp_path, function, args, refused_name, protocol
):
    # Protocol 2 writes Python 2 names (__builtin__, commands); both spellings must be refused.
    marker = tmp_path / "pwned"
    args = tuple(_format(arg, marker) for arg in args)
    payload = pickle.dumps((np.arange(3), _Calls(function, *args)), protocol=protocol)
    with pytest.raises(DatasetError, match=f"refused: it names {refused_name}"):
        safe_load_pickle(io.BytesIO(payload))
    assert not marker.exists()


def _format(arg, marker):
    if isinstance(arg, list):
        return [_format(item, marker) for item in arg]
    return arg.format(marker=str(marker))


@pytest.mark.parametrize("protocol", [2, 4])
def test_numpy_arrays_pickled_by_numpy_are_admitted(protocol):
    arrays = (
        np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        np.array([3, 1, 4], dtype=np.int64),
    )
    loaded = safe_load_pickle(io.BytesIO(pickle.dumps(arrays, protocol=protocol)))
    for got, expected in zip(loaded, arrays):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_legacy_numpy_core_module_name_is_admitted():
    payload = pickle.dumps(np.arange(5, dtype=np.uint8), protocol=2)
    assert b"numpy._core.multiarray\n_reconstruct" in payload
    legacy = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(
        safe_load_pickle(io.BytesIO(legacy)), np.arange(5, dtype=np.uint8)
    )


def test_python2_pickle_of_numpy_array_is_admitted():
    # Python 2's protocol 2 with numpy 1.x names, by hand: bytes are BINSTRING, not _codecs.encode.
    data = np.array([0.25, 0.5], dtype="<f4").tobytes()
    payload = (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02"
        b"K\x00\x85U\x01b\x87R(K\x01K\x02\x85cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R"
        b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        b"\x89U\x08" + data + b"tb."
    )
    np.testing.assert_array_equal(
        safe_load_pickle(io.BytesIO(payload)), np.array([0.25, 0.5], dtype=np.float32)
    )


def test_codecs_encode_is_admitted_only_for_latin1():
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(DatasetError, match="only 'latin1'"):
        safe_load_pickle(io.BytesIO(payload))


def test_malformed_pickle_is_a_dataset_error():
    with pytest.raises(DatasetError, match="not a valid pickle"):
        safe_load_pickle(io.BytesIO(b"\x80\x02K"))
