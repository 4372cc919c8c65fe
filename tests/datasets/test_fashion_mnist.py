"""Fashion-MNIST loader: source order (cache, named folder, Keras's download, Debian's folder),
verification of each, and the real data (marker ``fashion``). No test touches the network: the
download is replaced by a copy from a local folder, or by a failure."""

import shutil
from dataclasses import replace

import numpy as np
import pytest

from handnet.datasets import DatasetError, download, fashion_mnist
from handnet.datasets.cache import load_npz

from .test_mnist import (
    assert_keras_tuples_equal,
    offline,
    spec_for,
    tiny_mnist,
    write_idx_folder,
)

# The real one, kept before the tiny fixture replaces it by a failure.
FETCH_KERAS_FILES = fashion_mnist.fetch_keras_files


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Tiny data as Fashion-MNIST's spec, an empty HANDNET_HOME and Debian folder, no env
    folder, Keras's download offline."""
    arrays = tiny_mnist(seed=2)
    monkeypatch.setattr(fashion_mnist, "SPEC", replace(spec_for(arrays), name="Fashion-MNIST"))
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", str(tmp_path / "debian"))
    monkeypatch.setattr(fashion_mnist, "fetch_keras_files", offline)
    monkeypatch.setenv("HANDNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HANDNET_FASHION_MNIST_DIR", raising=False)
    return arrays


@pytest.fixture
def keras_serves(tiny, monkeypatch):
    """keras_serves(folder) makes the real fetch_keras_files 'download' from ``folder``; returns
    the list of (url, sha256) it was asked for."""
    monkeypatch.setattr(fashion_mnist, "fetch_keras_files", FETCH_KERAS_FILES)
    requested = []

    def serve(folder):
        def fake_download(url, dest, sha256, timeout=10, *, progress=True):
            assert timeout == fashion_mnist.KERAS_TIMEOUT_SECONDS
            requested.append((url, sha256))
            shutil.copyfile(folder / url.rsplit("/", 1)[1], dest)
            return dest

        monkeypatch.setattr(fashion_mnist, "download", fake_download)
        return requested

    return serve


def test_keras_download_comes_before_the_debian_folder_and_is_cached(tiny, keras_serves, tmp_path):
    write_idx_folder(tmp_path / "debian", tiny_mnist(seed=3))  # would fail verification
    requested = keras_serves(write_idx_folder(tmp_path / "remote", tiny))
    assert_keras_tuples_equal(fashion_mnist.load_data(verbose=False), tiny)
    assert requested == [
        ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/" + name, None)
        for name in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        )
    ]
    np.testing.assert_array_equal(
        load_npz(tmp_path / "home" / "fashion_mnist.npz")["x_test"], tiny["x_test"]
    )


def test_no_network_falls_through_to_the_debian_folder(tiny, tmp_path, monkeypatch, capsys):
    def no_network(url, dest, sha256, timeout=10, *, progress=True):
        raise DatasetError(f"could not download {url}: [Errno -2] Name or service not known")

    monkeypatch.setattr(fashion_mnist, "fetch_keras_files", FETCH_KERAS_FILES)
    monkeypatch.setattr(fashion_mnist, "download", no_network)
    write_idx_folder(tmp_path / "debian", tiny)
    assert_keras_tuples_equal(fashion_mnist.load_data(), tiny)
    err = capsys.readouterr().err
    assert "skipped Keras download" in err and "Name or service not known" in err
    assert f"Fashion-MNIST from folder {tmp_path / 'debian'}" in err


def test_a_corrupt_download_is_rejected_by_the_hash_check(tiny, keras_serves, tmp_path, capsys):
    """Well-formed IDX files with one pixel changed: only the SHA-256 of x_train tells."""
    corrupt = {name: array.copy() for name, array in tiny.items()}
    corrupt["x_train"][0, 0, 0] ^= 1
    keras_serves(write_idx_folder(tmp_path / "remote", corrupt))
    write_idx_folder(tmp_path / "debian", tiny)
    assert_keras_tuples_equal(fashion_mnist.load_data(), tiny)
    err = capsys.readouterr().err
    assert "skipped Keras download" in err and "x_train: expected sha256" in err
    np.testing.assert_array_equal(
        load_npz(tmp_path / "home" / "fashion_mnist.npz")["x_train"], tiny["x_train"]
    )


def test_a_download_that_is_not_gzip_is_rejected(tiny, keras_serves, tmp_path):
    remote = write_idx_folder(tmp_path / "remote", tiny)
    (remote / "t10k-images-idx3-ubyte.gz").write_bytes(b"<html>Not Found</html>")
    keras_serves(remote)
    with pytest.raises(DatasetError) as raised:
        fashion_mnist.load_data(verbose=False)
    message = str(raised.value)
    assert "Keras download" in message and "corrupt gzip data" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_download_without_a_hash_leaves_the_check_to_the_caller(tmp_path):
    source = tmp_path / "remote.gz"
    source.write_bytes(b"payload")
    dest = tmp_path / "got" / "remote.gz"
    assert download.download(source.as_uri(), dest, None, progress=False) == dest
    assert dest.read_bytes() == b"payload" and list(dest.parent.iterdir()) == [dest]


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
