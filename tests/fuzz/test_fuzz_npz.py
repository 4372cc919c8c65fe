"""Fuzz load_model: any .npz bytes give a working model or a HandnetError naming the file."""

import io
import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import handnet as hn
from handnet.saving import load_model

from .harness import fuzz_settings, mutated, outcome, seed_file, write_case, zip_of
from .json_fuzz import fuzzed_json


def small_model():
    model = hn.Sequential(
        [
            hn.layers.Input((4, 4, 1)),
            hn.layers.Conv2D(2, 3, name="conv"),
            hn.layers.BatchNormalization(name="norm"),
            hn.layers.Flatten(name="flat"),
            hn.layers.Dense(3, activation="softmax", name="out"),
        ],
        seed=0,
    ).compile("adam")
    model.fit(np.ones((4, 4, 4, 1), np.float32), np.arange(4) % 3, verbose=0)
    return model


SEED, SEED_MEMBERS = seed_file("seed.npz", small_model().save)
SEED_CONFIG = json.loads(np.load(io.BytesIO(SEED_MEMBERS["config.json.npy"])).tobytes())


def check(path):
    """A model that loads runs: predict on one sample (when the sample is small enough)."""
    model = outcome(load_model, path)
    if model is not None:
        assert model.built
        if math.prod(model.input_shape) <= 10_000:
            model.predict(np.zeros((1, *model.input_shape), model.dtype))


@fuzz_settings(300)
@given(st.binary(max_size=512))
def test_random_bytes(data):
    check(write_case(data, "random.npz"))


@fuzz_settings(400)
@given(mutated(SEED, header_bytes=256))
def test_mutated_files(data):
    check(write_case(data, "mutated.npz"))


@fuzz_settings(400)
@given(st.data())
def test_mutated_members_in_a_valid_zip(data):
    """CRCs right, contents wrong: each .npy member's header and payload mutated."""
    name = data.draw(st.sampled_from(sorted(SEED_MEMBERS)))
    members = dict(SEED_MEMBERS)
    members[name] = data.draw(mutated(members[name], header_bytes=128))
    check(write_case(zip_of(members), "members.npz"))


@fuzz_settings(400)
@given(fuzzed_json(SEED_CONFIG))
def test_fuzzed_config(config):
    members = dict(SEED_MEMBERS)
    raw = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.save(buffer, raw)
    members["config.json.npy"] = buffer.getvalue()
    check(write_case(zip_of(members), "config.npz"))
