"""The registry of layer mappings: each family module (dense, conv, pooling, …) registers its
``LayerMapping``s here, and import and export look them up by class.

    layer_from_keras("Conv2D", config)  -> a handnet Conv2D (every option checked)
    keras_layer_entry(layer)            -> the layer as Keras 3 writes it into config.json
"""

from ...errors import HandnetError
from ..options import COMMON_OPTIONS, KerasOptions, dtype_policy

#: Keras class name -> LayerMapping; handnet class -> LayerMapping (filled by the families).
KERAS_LAYERS = {}
BY_HANDNET_CLASS = {}
#: Keras classes that hold code, never read: the error says why instead of "not supported".
CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")


def register(*mappings):
    for mapping in mappings:
        KERAS_LAYERS[mapping.keras_class] = mapping
        BY_HANDNET_CLASS[mapping.handnet_class] = mapping


def supported_keras_classes():
    """Every Keras class import accepts: the mappings, InputLayer (a model's input) and the two
    model classes (a model used as a layer)."""
    return sorted([*KERAS_LAYERS, "InputLayer", "Functional", "Sequential"])


def unknown_layer_error(class_name, name):
    if class_name in CODE_LAYERS:
        return HandnetError(
            f"Keras layer {name!r} is a {class_name}: it holds Python code, and handnet never runs "
            "code from a file"
        )
    article = "an" if str(class_name)[:1] in "AEIOU" else "a"
    return HandnetError(
        f"Keras layer {name!r} is {article} {class_name}, which handnet does not have; "
        f"handnet reads {', '.join(supported_keras_classes())}"
    )


def layer_from_keras(class_name, config):
    """The handnet layer for one Keras layer {"class_name", "config"}; raises on anything
    unsupported."""
    mapping = KERAS_LAYERS.get(class_name)
    if mapping is None:
        name = config.get("name", "?") if isinstance(config, dict) else "?"
        raise unknown_layer_error(class_name, name)
    options = KerasOptions(class_name, config)
    common = options.common()
    arguments = mapping.from_keras(options)
    options.finish()
    try:
        return mapping.handnet_class(**arguments, **common)
    except (HandnetError, TypeError, ValueError) as error:
        raise HandnetError(f"Keras layer {options.layer_name!r} ({class_name}): {error}") from None


def layer_to_keras(layer):
    """(Keras class name, Keras config) of a handnet layer; raises for a layer Keras lacks.
    The config starts from the layer's own ``get_config()``: the mapping converts the values
    Keras writes differently and adds the keys only Keras has."""
    mapping = BY_HANDNET_CLASS.get(type(layer))
    if mapping is None:
        names = sorted(m.handnet_class.__name__ for m in KERAS_LAYERS.values())
        raise HandnetError(
            f"layer {layer.name!r} ({type(layer).__name__}) has no Keras counterpart; Keras "
            f"export covers {names} and models"
        )
    config = {k: v for k, v in layer.get_config().items() if k not in COMMON_OPTIONS}
    return mapping.keras_class, mapping.to_keras(layer, config)


def keras_layer_entry(layer):
    """A built handnet layer as Keras 3 writes a layer into a model's config.json (plain data)."""
    keras_class, keras_config = layer_to_keras(layer)
    return {
        "module": "keras.layers",
        "class_name": keras_class,
        "config": {
            "name": layer.name,
            "trainable": layer.trainable,
            "dtype": dtype_policy(layer.dtype),
            **keras_config,
        },
        "registered_name": None,
        "build_config": {"input_shape": batch_shapes(layer.input_shape)},
    }


def batch_shapes(shape):
    """A per-sample shape (or a list of them) with Keras's batch axis: [None, …]."""
    if shape and isinstance(shape[0], (list, tuple)):
        return [[None, *s] for s in shape]
    return [None, *shape]
