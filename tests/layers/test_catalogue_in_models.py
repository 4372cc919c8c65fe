"""The catalogue's layers inside models: a Sequential of them checked end to end with the
training loss (float64, central differences), trained a few steps, saved and loaded; and a
functional graph through them."""

import numpy as np

import handnet as hn
from handnet import layers


def catalogue_model():
    return hn.Sequential(
        [
            layers.Input((3, 3, 2)),
            layers.UpSampling2D(2, interpolation="bilinear"),
            layers.Cropping2D(((1, 0), (0, 1))),
            layers.GroupNormalization(groups=2),
            layers.PReLU(shared_axes=[1, 2]),
            layers.UpSampling2D((1, 2)),
            layers.Flatten(data_format="channels_first"),
            layers.Dense(6),
            layers.ELU(0.5),
            layers.LayerNormalization(),
            layers.RepeatVector(2),
            layers.Permute((2, 1)),
            layers.UpSampling1D(2),
            layers.ZeroPadding1D((1, 0)),
            layers.Cropping1D((0, 2)),
            layers.UnitNormalization(axis=[1, 2]),
            layers.Identity(),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ],
        seed=0,
    )


def test_gradcheck_with_the_training_loss():
    model = catalogue_model().compile("sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((3, 3, 3, 2))
    report = hn.gradcheck(model, x=x, y=np.array([0, 1, 2]), training=True)
    assert report.passed, f"\n{report}"
    checked = {(row.layer, row.quantity) for row in report.rows}
    assert {quantity for _, quantity in checked} >= {"alpha", "gamma", "beta", "kernel", "x"}


def test_fit_save_and_load(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((24, 3, 3, 2)).astype("float32")
    y = rng.integers(0, 3, 24)
    normalize = layers.Normalization(axis=-1).adapt(x * 3 + 1)
    model = catalogue_model()
    model = hn.Sequential([layers.Input((3, 3, 2)), normalize, *model.layers], seed=0)
    model.compile("adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "catalogue.npz")
    loaded = hn.load_model(tmp_path / "catalogue.npz")
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_functional_graph_through_the_catalogue():
    inputs = layers.Input((4,))
    repeated = layers.RepeatVector(3)(inputs.tensor)
    normalized = layers.LayerNormalization()(repeated)
    flipped = layers.Permute((2, 1))(layers.PReLU()(normalized))
    outputs = layers.Dense(2)(layers.Flatten()(flipped))
    model = hn.Model(inputs.tensor, outputs)
    x = np.random.default_rng(2).standard_normal((5, 4)).astype("float32")
    assert model.predict(x).shape == (5, 2)
    config = model.get_config()
    rebuilt = hn.Model.from_config(config)
    assert [type(layer).__name__ for layer in rebuilt.layers] == [
        type(layer).__name__ for layer in model.layers
    ]


def test_replicas_compute_what_the_original_does():
    """Layer.replica (shared layers, split batches) drops the private array caches: every layer
    must rebuild what it needs (UpSampling2D's interpolation matrices) and agree with its
    original, outputs and gradients."""
    rng = np.random.default_rng(3)
    model = catalogue_model()
    model.build()
    x = rng.standard_normal((2, 3, 3, 2)).astype("float32")
    for layer in model.layers:
        twin = layer.replica()
        y = layer.forward(x)
        np.testing.assert_array_equal(twin.forward(x), y)
        dy = rng.standard_normal(y.shape).astype("float32")
        np.testing.assert_array_equal(twin.backward(dy), layer.backward(dy))
        for key in layer.grads:
            np.testing.assert_array_equal(twin.grads[key], layer.grads[key])
        x = y
