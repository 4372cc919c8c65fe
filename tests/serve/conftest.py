"""A running ``handnet serve`` for the tests: a folder of three models, served on a free port.

    served/cnn/model.npz     the cnn, trained briefly on real MNIST (sensible answers, ~90 %)
    served/mlp.npz           the mlp, untrained (seed 0)
    served/keras/mlp.keras   the same mlp written as a Keras file

and, for the attention maps, a second server (``vit_server_url``) of

    served_vit/vit.npz       a small vit (the digit_vit fixture), untrained (seed 0)
    served_vit/mlp.npz       the mlp, untrained: a model with no attention to switch to
"""

import threading

import pytest

import handnet as hn
from handnet.preprocess import prepare_images
from handnet.zoo import architectures
from handnet.keras_io import to_keras
from handnet.serve import ModelRegistry, make_server
from handnet.zoo.vit import vit_model


@pytest.fixture(scope="session")
def mnist_test():
    (_, _), (x_test, y_test) = hn.datasets.mnist.load_data(verbose=False)
    return x_test, y_test


@pytest.fixture(scope="session")
def served_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    (x_train, y_train), _ = hn.datasets.mnist.load_data(verbose=False)
    cnn = architectures.build("cnn", seed=0)
    cnn.compile(hn.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    cnn.fit(
        prepare_images(x_train[:3000], cnn.input_shape),
        y_train[:3000],
        epochs=1,
        batch_size=64,
        verbose=0,
        seed=0,
    )
    (folder / "cnn").mkdir()
    cnn.save(folder / "cnn" / "model.npz")
    mlp = architectures.build("mlp", seed=0)
    mlp.save(folder / "mlp.npz")
    (folder / "keras").mkdir()
    to_keras(mlp, folder / "keras" / "mlp.keras")
    return folder


@pytest.fixture(scope="session")
def registry(served_folder):
    return ModelRegistry.from_path(served_folder)


def serving(registry):
    """Serve ``registry`` on a free port of 127.0.0.1 in a thread: yields the URL, then stops."""
    server = make_server(registry, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def server_url(registry):
    yield from serving(registry)


@pytest.fixture(scope="session")
def digit_vit():
    """The vit's layers at a size that runs in milliseconds, still a 28×28 digit classifier
    (what the server accepts): 7×7 patches, so 16 tokens (a 4×4 grid) of 16 features, two
    blocks of two heads."""
    return vit_model(patch=7, features=16, depth=2, heads=2, mlp=32, dropout=0.0, seed=0)


@pytest.fixture(scope="session")
def vit_folder(tmp_path_factory, digit_vit):
    folder = tmp_path_factory.mktemp("served_vit")
    digit_vit.save(folder / "vit.npz")
    architectures.build("mlp", seed=0).save(folder / "mlp.npz")
    return folder


@pytest.fixture(scope="session")
def vit_server_url(vit_folder):
    yield from serving(ModelRegistry.from_path(vit_folder))
