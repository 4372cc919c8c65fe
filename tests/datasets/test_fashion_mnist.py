import numpy as np
import pytest

from handnet.datasets import DatasetError, fashion_mnist
from handnet.datasets.cache import load_npz

from .test_mnist import assert_keras_tuples_equal, spec_for, tiny_mnist, write_idx_folder


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    arrays = tiny_mnist(seed=2)
    monkeypatch.setattr(fashion_mnist, "SPEC", spec_for(arrays))
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", str(tmp_path / "debian"))
    monkeypatch.setenv("HANDNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HANDNET_FASHION_MNIST_DIR", raising=False)
    return arrays


def test_debian_folder_is_used_and_cached(tiny, tmp_path):
    write_idx_folder(tmp_path / "debian", tiny)
    assert_keras_tuples_equal(fashion_mnist.load_data(verbose=False), tiny)
    np.testing.assert_array_equal(
        load_npz(tmp_path / "home" / "fashion_mnist.npz")["y_train"], tiny["y_train"]
    )


def test_named_folder_comes_before_the_debian_one(tiny, tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "debian", tiny_mnist(seed=3))
    monkeypatch.setenv(
        "HANDNET_FASHION_MNIST_DIR", str(write_idx_folder(tmp_path / "mine", tiny, suffix=""))
    )
    assert_keras_tuples_equal(fashion_mnist.load_data(cache=False, verbose=False), tiny)


def test_nothing_found_says_how_to_install(tiny):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load_data(verbose=False)


@pytest.mark.fashion
def test_real_fashion_mnist_loads_like_keras():
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert (x_train.shape, x_train.dtype) == ((60000, 28, 28), np.uint8)
    assert (x_test.shape, x_test.dtype) == ((10000, 28, 28), np.uint8)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
