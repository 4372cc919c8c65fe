"""Identity, Permute, RepeatVector, Cropping1D/2D, ZeroPadding1D, UpSampling1D/2D, Resizing and
CenterCrop against Keras 3 on the torch backend: y and ∂L/∂x within 1e-5 in float32
(catalogue_parity.py), handnet's layer built from Keras's config. Bilinear UpSampling2D and
Resizing are Keras's ops.image.resize, which on the torch backend is F.interpolate(mode=
"bilinear", align_corners=False, antialias=False) (nearest: mode="nearest-exact"); they are
checked over odd and even sizes, factors and ratios (larger, smaller, non-integer), and in
float64 too, where the match is to 1e-12 (the same formula, not a lookalike)."""

import numpy as np
import pytest
from catalogue_parity import check_parity, config_round_trip

import handnet as hn
from handnet.gradcheck import relative_error

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

CASES = [
    ("Identity", {}, (3, 4)),
    ("Permute", {"dims": (2, 1)}, (3, 4)),
    ("Permute", {"dims": (3, 1, 2)}, (2, 3, 4)),
    ("Permute", {"dims": (1, 2)}, (3, 4)),
    ("RepeatVector", {"n": 3}, (5,)),
    ("Cropping1D", {}, (5, 2)),
    ("Cropping1D", {"cropping": (0, 3)}, (5, 2)),
    ("Cropping1D", {"cropping": 2}, (5, 2)),
    ("Cropping2D", {"cropping": 1}, (5, 4, 2)),
    ("Cropping2D", {"cropping": (2, 1)}, (5, 4, 2)),
    ("Cropping2D", {"cropping": ((1, 0), (0, 2))}, (5, 4, 2)),
    ("Cropping2D", {"cropping": ((0, 0), (1, 1))}, (3, 4, 2)),
    ("ZeroPadding1D", {}, (4, 3)),
    ("ZeroPadding1D", {"padding": (0, 2)}, (4, 3)),
    ("ZeroPadding1D", {"padding": 3}, (4, 3)),
    ("UpSampling1D", {}, (4, 3)),
    ("UpSampling1D", {"size": 3}, (4, 3)),
    ("UpSampling2D", {}, (3, 4, 2)),
    ("UpSampling2D", {"size": (1, 3)}, (3, 4, 2)),
    *[
        ("UpSampling2D", {"size": size, "interpolation": "bilinear"}, shape)
        for size, shape in [
            ((2, 2), (3, 4, 2)),
            ((3, 3), (3, 3, 1)),
            ((2, 3), (5, 2, 3)),
            ((1, 4), (2, 5, 2)),
            ((5, 1), (1, 2, 2)),
            ((4, 4), (1, 1, 1)),
            ((3, 2), (4, 7, 1)),
        ]
    ],
    *[
        ("Resizing", args, shape)
        for args, shape in [
            ({"height": 32, "width": 32}, (28, 28, 1)),
            ({"height": 14, "width": 14}, (28, 28, 1)),
            ({"height": 20, "width": 9}, (28, 28, 2)),
            ({"height": 7, "width": 5}, (5, 7, 3)),
            ({"height": 4, "width": 4}, (4, 4, 1)),
            ({"height": 1, "width": 3}, (6, 1, 1)),
            ({"height": 32, "width": 32, "interpolation": "nearest"}, (28, 28, 1)),
            ({"height": 14, "width": 20, "interpolation": "nearest"}, (28, 28, 1)),
            ({"height": 11, "width": 13, "interpolation": "nearest"}, (28, 28, 1)),
            ({"height": 7, "width": 5, "interpolation": "nearest"}, (5, 7, 3)),
            ({"height": 10, "width": 6, "crop_to_aspect_ratio": True}, (8, 9, 2)),
            ({"height": 6, "width": 10, "crop_to_aspect_ratio": True}, (8, 9, 2)),
            ({"height": 10, "width": 6, "pad_to_aspect_ratio": True, "fill_value": 0.5},
             (8, 9, 2)),
            ({"height": 6, "width": 10, "pad_to_aspect_ratio": True}, (8, 9, 2)),
        ]
    ],
    ("CenterCrop", {"height": 3, "width": 2}, (5, 4, 2)),
    ("CenterCrop", {"height": 3, "width": 3}, (4, 4, 1)),
    ("CenterCrop", {"height": 24, "width": 24}, (28, 28, 1)),
    ("CenterCrop", {"height": 5, "width": 6}, (3, 4, 2)),  # larger: Keras's smart_resize
    ("CenterCrop", {"height": 2, "width": 5}, (4, 3, 1)),
]


def case_id(case):
    kind, args, shape = case
    return f"{kind}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras(keras, torch, case):
    kind, args, shape = case
    check_parity(keras, torch, kind, args, shape)


@pytest.mark.parametrize("size", [(2, 2), (3, 5)], ids=str)
def test_bilinear_is_keras_formula_in_float64(keras, torch, size):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3, 2))
    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = keras.layers.UpSampling2D(size, interpolation="bilinear", dtype="float64")(x_torch)
    upstream = rng.standard_normal(tuple(y_torch.shape))
    (y_torch * torch.tensor(upstream)).sum().backward()
    layer = hn.layers.UpSampling2D(size, interpolation="bilinear", dtype="float64")
    assert relative_error(layer(x), y_torch.detach().numpy()) < 1e-12
    assert relative_error(layer.backward(upstream), x_torch.grad.numpy()) < 1e-12


@pytest.mark.parametrize(
    "kind, args",
    [("Resizing", {"height": 9, "width": 4}), ("Resizing", {"height": 3, "width": 11}),
     ("Resizing", {"height": 9, "width": 4, "interpolation": "nearest"}),
     ("Resizing", {"height": 5, "width": 5, "crop_to_aspect_ratio": True}),
     ("Resizing", {"height": 5, "width": 5, "pad_to_aspect_ratio": True, "fill_value": -1.0}),
     ("CenterCrop", {"height": 6, "width": 2})],
    ids=str,
)
def test_resizing_is_keras_formula_in_float64(keras, torch, kind, args):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 7, 2))
    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = getattr(keras.layers, kind)(**args, dtype="float64")(x_torch)
    upstream = rng.standard_normal(tuple(y_torch.shape))
    (y_torch * torch.tensor(upstream)).sum().backward()
    layer = getattr(hn.layers, kind)(**args, dtype="float64")
    assert relative_error(layer(x), y_torch.detach().numpy()) < 1e-12
    assert relative_error(layer.backward(upstream), x_torch.grad.numpy()) < 1e-12


CONFIG_KEYS = {
    "Identity": (),
    "Permute": ("dims",),
    "RepeatVector": ("n",),
    "Cropping1D": ("cropping",),
    "Cropping2D": ("cropping", "data_format"),
    "ZeroPadding1D": ("padding", "data_format"),
    "UpSampling1D": ("size",),
    "UpSampling2D": ("size", "data_format", "interpolation"),
    "Resizing": ("height", "width", "interpolation", "crop_to_aspect_ratio",
                 "pad_to_aspect_ratio", "fill_mode", "fill_value", "antialias", "data_format"),
    "CenterCrop": ("height", "width", "data_format"),
}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_built_from_the_keras_config(keras, case):
    kind, args, shape = case
    layer = config_round_trip(keras, kind, args, CONFIG_KEYS[kind])
    keras_config = getattr(keras.layers, kind)(**args).get_config()
    ours = layer.get_config()
    for key in CONFIG_KEYS[kind]:
        expected = keras_config[key]
        if isinstance(expected, tuple):
            expected = [list(v) if isinstance(v, tuple) else v for v in expected]
        assert ours[key] == expected, key


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2)], ids=str)
def test_flatten_data_format_matches_keras(keras, torch, data_format, shape):
    layer, _ = check_parity(keras, torch, "Flatten", {"data_format": data_format}, shape)
    keras_config = keras.layers.Flatten(data_format=data_format).get_config()
    assert layer.get_config()["data_format"] == keras_config["data_format"]
