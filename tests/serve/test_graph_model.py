"""The draw-a-digit API answers for a graph (a residual network), not only for a chain."""

from pathlib import Path

import numpy as np

from handnet.serve import api
from handnet.serve.models import ServedModel
from handnet.zoo import architectures


def test_a_residual_graph_is_served_with_every_layers_summary():
    model = architectures.build("resnet", seed=0)
    served = ServedModel("resnet", Path("resnet.npz"), model)
    digit = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    answer = api.predict(served, digit)
    expected = model.predict(digit.reshape(1, 28, 28, 1))[0]
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-6)
    assert answer["digit"] == int(expected.argmax())
    # The stem and a convolution inside a residual block are summarized, the Add reached.
    assert {"stem_conv", "stage1_block1_conv1"} <= set(answer["activations"])
