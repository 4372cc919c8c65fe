"""What handnet does with every Keras 3 layer class and activation string, checked against the
installed Keras so that neither the registry nor docs/keras.md can drift from it.

- every public Layer class of keras.layers is in the catalogue: imported, an alias, or refused
  with a reason; at least 60 classes import (the mapping registry, counted);
- docs/keras.md's table is the catalogue's, row for row;
- a file using refused classes is refused once, naming every such layer with its reason;
- every activation string Keras 3 writes is imported or refused with its reason.
"""

import re
from pathlib import Path

import pytest

from handnet import activations
from handnet.errors import HandnetError
from handnet.keras_io import from_keras
from handnet.keras_io.maps import (
    BY_HANDNET_CLASS,
    KERAS_LAYERS,
    keras_classes,
    layer_from_keras,
    markdown_table,
    refusal,
    status,
)
from handnet.keras_io.maps.catalogue import ALIASES, REFUSED
from handnet.keras_io.options import KERAS_ACTIVATIONS, REFUSED_ACTIVATIONS
from handnet.layers import LAYERS

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "keras.md"
BEGIN, END = "<!-- keras-classes:begin -->", "<!-- keras-classes:end -->"
MINIMUM_IMPORTED = 60


def keras_layer_classes(keras):
    return {
        name: getattr(keras.layers, name) for name in dir(keras.layers)
        if not name.startswith("_") and isinstance(getattr(keras.layers, name), type)
        and issubclass(getattr(keras.layers, name), keras.layers.Layer)
    }


def test_the_catalogue_is_every_keras_layer_class(keras):
    assert set(keras_classes()) == set(keras_layer_classes(keras))


def test_aliases_are_keras_aliases(keras):
    classes = keras_layer_classes(keras)
    assert {name for name, cls in classes.items() if cls.__name__ != name} == set(ALIASES)
    for alias, name in ALIASES.items():
        assert classes[alias].__name__ == name


def test_at_least_sixty_classes_import(keras):
    classes = keras_layer_classes(keras)
    imported = sorted(KERAS_LAYERS)
    print(f"{len(imported)} Keras layer classes import: {', '.join(imported)}")
    assert len(imported) >= MINIMUM_IMPORTED
    for name in imported:  # each a real Keras class under its own name, not an alias
        assert classes[name].__name__ == name
        assert refusal(name) is None and status(name).startswith("supported (maps/")
    assert not set(imported) & set(REFUSED)


def test_every_handnet_layer_maps_onto_its_keras_namesake():
    """Both directions: each handnet layer class (but Input, a model's InputLayer) has a mapping,
    under its own name, so any handnet model of them exports."""
    for name, cls in LAYERS.items():
        if name == "Input":
            continue
        assert cls in BY_HANDNET_CLASS, name
        assert BY_HANDNET_CLASS[cls].keras_class == name


def test_every_refusal_has_a_reason(keras):
    for name in keras_classes():
        row = status(name)
        assert row.startswith(("supported", "alias of")) or "not imported: " in row, (name, row)
        if "not imported: " in row:
            assert len(row.split("not imported: ", 1)[1]) > 20, (name, row)


def test_docs_table_is_the_catalogue():
    text = DOCS.read_text()
    assert BEGIN in text and END in text, f"{DOCS} has no {BEGIN} … {END} section"
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert table == markdown_table(), (
        "docs/keras.md's table of Keras classes is out of date; regenerate it with "
        "handnet.keras_io.maps.markdown_table()"
    )
    imported = len(KERAS_LAYERS)
    assert f"{imported} Keras layer classes import" in text


@pytest.mark.parametrize("class_name", sorted(REFUSED) + sorted(ALIASES))
def test_each_refused_class_is_named_with_its_reason(class_name):
    reason = refusal(class_name)
    if reason is None:  # an alias of a class handnet reads
        assert ": supported (maps/" in status(class_name)
        return
    with pytest.raises(HandnetError) as caught:
        layer_from_keras(class_name, {"name": "layer_x"})
    assert f"'layer_x' is {'an' if class_name[0] in 'AEIOU' else 'a'} {class_name}" in str(
        caught.value)
    assert reason in str(caught.value)


def test_an_alias_of_an_imported_class_is_read_as_it():
    layer = layer_from_keras("Convolution2D", {"name": "c", "filters": 2, "kernel_size": 3})
    assert type(layer).__name__ == "Conv2D"


def test_one_error_names_every_refused_layer_with_its_reason(keras, tmp_path):
    K = keras.layers
    inputs = keras.Input((8, 8, 1))
    h = K.Conv2D(2, 3, name="fine_conv")(inputs)
    h = K.AutoContrast(name="contrast")(h)
    h = K.RandomShear(0.1, name="shear")(h)
    flat = K.Flatten()(h)
    h = K.RMSNormalization(name="rms")(flat)
    h = K.SpectralNormalization(K.Dense(4), name="spectral")(h)
    model = keras.Model(inputs, K.Dense(2, name="head")(h))
    model.save(tmp_path / "refused.keras")
    with pytest.raises(HandnetError) as caught:
        from_keras(tmp_path / "refused.keras")
    message = str(caught.value)
    assert "4 layers cannot be imported" in message, message
    for name, class_name in [("contrast", "AutoContrast"), ("shear", "RandomShear"),
                             ("rms", "RMSNormalization"), ("spectral", "SpectralNormalization")]:
        line = next(line for line in message.splitlines() if f"'{name}'" in line)
        article = "an" if class_name[0] in "AEIOU" else "a"
        assert f"is {article} {class_name}: {refusal(class_name)}" in line, line
    assert "fine_conv" not in message and "'head'" not in message


# -- activation strings ------------------------------------------------------------------------
def keras_activation_names(keras):
    """What Keras 3 writes for each public activation: serialize(get(name)) ("swish" is
    written "silu")."""
    names = [n for n in dir(keras.activations)
             if not n.startswith("_") and n not in ("get", "serialize", "deserialize")]
    return {name: keras.activations.serialize(keras.activations.get(name)) for name in names}


def test_every_keras_activation_string_is_imported_or_refused_with_its_reason(keras):
    written = keras_activation_names(keras)
    assert len(written) >= 30
    for name, string in written.items():
        assert string in KERAS_ACTIVATIONS or string in REFUSED_ACTIVATIONS, (name, string)
        assert not (string in KERAS_ACTIVATIONS and string in REFUSED_ACTIVATIONS)
    assert set(REFUSED_ACTIVATIONS) <= set(written.values())


@pytest.mark.parametrize("name", sorted(REFUSED_ACTIVATIONS))
def test_refused_activation_strings_name_their_reason(name):
    with pytest.raises(HandnetError) as caught:
        layer_from_keras("Dense", {"name": "d", "units": 4, "activation": name})
    message = str(caught.value)
    assert f"activation={name!r} is not supported: {REFUSED_ACTIVATIONS[name]}" in message
    with pytest.raises(HandnetError, match=re.escape(REFUSED_ACTIVATIONS[name])):
        layer_from_keras("Activation", {"name": "a", "activation": name})


def test_imported_activation_strings_build_layers(keras):
    """Every string Keras writes that handnet reads makes a layer with that activation (their
    values against Keras's: tests/test_activations_keras.py)."""
    for name, string in keras_activation_names(keras).items():
        if string in REFUSED_ACTIVATIONS:
            continue
        for class_name, config in (("Activation", {}), ("Dense", {"units": 2})):
            layer = layer_from_keras(class_name, {"name": "a", "activation": string, **config})
            assert activations.serialize(layer.activation) == KERAS_ACTIVATIONS[string], name
