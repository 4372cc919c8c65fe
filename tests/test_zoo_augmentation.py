"""Augmentation as layers at the input (handnet.zoo.augmentation): the layers draw what
RandomAffine draws, warp with the same functions, are the identity at inference, and a model
carrying them trains, saves and reloads."""

import numpy as np
import pytest

import handnet as hn
from handnet import augment, layers
from handnet.errors import HandnetError
from handnet.zoo import architectures
from handnet.zoo.augmentation import augmentation_layers
from cli_run import run

BEST = {"rotation": 10, "shift": 0.1, "scale": [0.9, 1.1]}


def _digits(n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28, 1), np.float32)
    x[:, 6:22, 10:18] = rng.random((n, 16, 8, 1), dtype=np.float32)  # a stroke off the border
    return x


def test_best_settings_become_rotation_translation_and_zoom():
    rotation, translation, zoom = augmentation_layers(BEST)
    assert isinstance(rotation, layers.RandomRotation)
    assert rotation.factor == (-10 / 360, 10 / 360)
    assert isinstance(translation, layers.RandomTranslation)
    assert translation.height_factor == translation.width_factor == (-0.1, 0.1)
    assert isinstance(zoom, layers.RandomZoom)
    assert zoom.width_factor is None  # the aspect ratio is kept, as RandomAffine's one scale
    for layer in (rotation, translation, zoom):
        assert (layer.fill_mode, layer.fill_value) == ("constant", 0.0)


def test_the_zooms_scale_the_digit_over_the_same_range_as_randomaffine():
    zoom = augmentation_layers({"rotation": 0, "shift": 0, "scale": [0.8, 1.25]})[0]
    zoom.build((28, 28, 1), rng=np.random.default_rng(0))
    zoom.rng = np.random.default_rng(1)
    zs = zoom.draw(20000)["matrices"][:, 0, 0]
    scales = 1 / zs  # the source is read at z·(p - c) + c: the digit is scaled by 1/z
    assert scales.min() >= 0.8 - 1e-12 and scales.max() <= 1.25 + 1e-12
    assert scales.min() < 0.801 and scales.max() > 1.249


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"rotation": 0, "shift": 0, "scale": None}, []),
        ({"rotation": 0, "shift": None, "scale": None, "flip": 0.5}, [layers.RandomFlip]),
        ({"rotation": 15, "shift": 0, "scale": None}, [layers.RandomRotation]),
        ({"rotation": 0, "shift": [0.1, 0.2], "scale": None}, [layers.RandomTranslation]),
    ],
)
def test_parts_that_are_off_give_no_layer(settings, expected):
    assert [type(layer) for layer in augmentation_layers(settings)] == expected


@pytest.mark.parametrize(
    "settings, words",
    [
        ({**BEST, "elastic": [34, 4]}, "elastic distortion has no Keras layer"),
        ({**BEST, "flip": 0.3}, "flip=0.3 has no layer"),
        ({**BEST, "rotation": -5}, "rotation"),
    ],
)
def test_settings_without_a_layer_are_refused(settings, words):
    with pytest.raises(HandnetError, match=words):
        augmentation_layers(settings)


def test_a_rotation_layer_warps_as_randomaffine_does():
    """Same angles: the layer and augment.affine_transform give the same images (one code)."""
    x = _digits()
    angles = np.linspace(-10, 10, len(x))
    (rotation,) = augmentation_layers({"rotation": 10, "shift": 0, "scale": None})
    rotation.build(x.shape[1:], rng=np.random.default_rng(0))
    by_layer = rotation.transform(x, rotation.parameters(angles))
    by_affine = augment.affine_transform(x, angles, np.ones(len(x)), np.zeros((len(x), 2)))
    np.testing.assert_allclose(by_layer, by_affine, atol=1e-6)
    assert np.abs(by_layer - x).max() > 0.1  # it did rotate


def test_flat_inputs_are_refused_with_the_way_out():
    with pytest.raises(HandnetError, match=r"mlp reads inputs of shape \(784,\).*fit\(augment"):
        architectures.build("mlp", augmentation=BEST)


@pytest.mark.parametrize("name", ["best", "resnet"])
def test_the_layers_are_the_identity_at_inference_and_active_in_training(name):
    plain = architectures.build(name, seed=0, small=True)
    augmented = architectures.build(name, seed=0, small=True, augmentation=BEST)
    kinds = {type(layer).__name__ for layer in augmented.flat_layers()}
    assert {"RandomRotation", "RandomTranslation", "RandomZoom"} <= kinds
    weights = [w for layer in plain.flat_layers() for w in layer.params.values()]
    receiving = [layer for layer in augmented.flat_layers() if layer.params]
    assert sum(len(layer.params) for layer in receiving) == len(weights)
    it = iter(weights)
    for layer in receiving:
        for key in layer.params:
            layer.params[key][...] = next(it)
    x = np.random.default_rng(0).random((5, *plain.input_shape), dtype=np.float32)
    np.testing.assert_array_equal(augmented.predict(x), plain.predict(x))
    (first,) = [lay for lay in augmented.flat_layers() if isinstance(lay, layers.RandomRotation)]
    assert not np.allclose(first.forward(x, training=True), x)


def test_a_model_with_augmentation_layers_trains_saves_and_reloads(tmp_path):
    x = _digits(64)
    y = np.arange(64) % 3
    model = architectures.build("best", seed=0, small=True, augmentation=BEST)
    x16 = x[:, 6:22, 6:22]
    model.compile(hn.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    first = model.fit(x16, y, epochs=1, batch_size=32, verbose=0, seed=0).history["loss"]
    again = architectures.build("best", seed=0, small=True, augmentation=BEST)
    again.compile(hn.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    assert again.fit(x16, y, epochs=1, batch_size=32, verbose=0, seed=0).history["loss"] == first
    model.save(tmp_path / "model.npz")
    loaded = hn.load_model(tmp_path / "model.npz")
    assert [type(layer).__name__ for layer in loaded.layers[:3]] == [
        "RandomRotation", "RandomTranslation", "RandomZoom"
    ]
    np.testing.assert_array_equal(loaded.predict(x16), model.predict(x16))


# -- handnet train --augment-layers ---------------------------------------------------------


@pytest.mark.mnist
def test_train_with_augment_layers_puts_them_in_the_saved_model(tmp_path):
    import json

    status, out, err = run(
        ["train", "--model", "best", "--augment-layers", "--epochs", 1, "--train-limit", 512,
         "--out", tmp_path, "-q"]
    )
    assert status == 0, err
    assert "augmented images (by layers at the input)" in out
    settings = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert settings["augment_as"] == "layers" and settings["augment"]["rotation"] == 10
    kinds = [type(layer).__name__ for layer in hn.load_model(tmp_path / "model.npz").layers]
    assert kinds[:3] == ["RandomRotation", "RandomTranslation", "RandomZoom"]


@pytest.mark.mnist
def test_augment_layers_without_settings_is_refused(tmp_path):
    status, _, err = run(
        ["train", "--model", "cnn", "--augment-layers", "--epochs", 1, "--train-limit", 256,
         "--out", tmp_path, "-q"]
    )
    assert status == 2 and "--augment-layers needs augmentation settings" in err
