"""Fuzz load_model: any .npz bytes give a working model or a HandnetError naming the file."""

import io
import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from handnet.saving import load_model

from .harness import check_model_loads, fuzz_settings, mutated, seed_file, write_case, zip_of
from .json_fuzz import fuzzed_json
from .keras_seeds import small_model


def trained_small_model():
    """keras_seeds' small model after one step of Adam: its file holds optimizer slots too."""
    model = small_model().compile("adam")
    model.fit(np.ones((4, 4, 4, 1), np.float32), np.arange(4) % 3, verbose=0)
    return model


SEED, SEED_MEMBERS = seed_file("seed.npz", trained_small_model().save)
SEED_CONFIG = json.loads(np.load(io.BytesIO(SEED_MEMBERS["config.json.npy"])).tobytes())


def check(path):
    check_model_loads(load_model, path)


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
