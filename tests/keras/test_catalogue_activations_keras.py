"""PReLU and ELU against Keras 3 on the torch backend: weights (alpha's name, shape and
initial zeros), y, ∂L/∂x and ∂L/∂alpha within 1e-5 in float32 (catalogue_parity.py), and
handnet's layer built from Keras's config."""

import pytest
from catalogue_parity import check_parity, config_round_trip

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

CASES = [
    ("PReLU", {}, (5,)),
    ("PReLU", {}, (3, 4)),
    ("PReLU", {"shared_axes": [1]}, (3, 4)),
    ("PReLU", {"shared_axes": [1, 2]}, (3, 4, 2)),
    ("PReLU", {"shared_axes": 2}, (3, 4, 2)),
    ("PReLU", {"shared_axes": [1, 2, 3]}, (3, 4, 2)),
    ("ELU", {}, (5,)),
    ("ELU", {"alpha": 0.4}, (3, 4)),
    ("ELU", {"alpha": 2.5}, (2, 3, 2)),
]


def case_id(case):
    kind, args, shape = case
    return f"{kind}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras(keras, torch, case):
    kind, args, shape = case
    check_parity(keras, torch, kind, args, shape)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_built_from_the_keras_config(keras, case):
    kind, args, _ = case
    keys = ("shared_axes",) if kind == "PReLU" else ("alpha",)
    layer = config_round_trip(keras, kind, args, keys)
    for key, value in args.items():
        expected = [value] if key == "shared_axes" and isinstance(value, int) else value
        assert layer.get_config()[key] == expected
