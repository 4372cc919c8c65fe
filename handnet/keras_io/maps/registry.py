"""The registry of layer mappings: each family module (dense, conv, pooling, …) registers its
``LayerMapping``s here, and import and export look them up by class.

    layer_from_keras("Conv2D", config)  -> a handnet Conv2D (every option checked)
    keras_layer_entry(layer)            -> the layer as Keras 3 writes it into config.json
"""

from ...errors import HandnetError
from ..options import COMMON_OPTIONS, KerasOptions, dtype_policy
from .catalogue import ALIAS_ONLY, ALIASES, CODE_CLASSES, CUSTOM, OPERATIONS, REFUSED

#: Keras class name -> LayerMapping; handnet class -> LayerMapping (filled by the families).
KERAS_LAYERS = {}
BY_HANDNET_CLASS = {}
#: Keras classes that hold code, never read: the error says why instead of "not supported".
CODE_LAYERS = ("Lambda", *CODE_CLASSES)
#: Classes import reads besides the layer mappings.
MODEL_AND_INPUT = ("InputLayer", "Sequential", "Functional")


def register(*mappings):
    for mapping in mappings:
        KERAS_LAYERS[mapping.keras_class] = mapping
        BY_HANDNET_CLASS[mapping.handnet_class] = mapping


def supported_keras_classes():
    """Every Keras class import accepts: the mappings, InputLayer (a model's input) and the two
    model classes (a model used as a layer)."""
    return sorted([*KERAS_LAYERS, "InputLayer", "Functional", "Sequential"])


# -- the catalogue of Keras's classes ------------------------------------------------------
def canonical(class_name):
    """The class an alias names (Convolution2D -> Conv2D); any other name as it is."""
    return ALIASES.get(class_name, class_name) if isinstance(class_name, str) else class_name


def refusal(class_name):
    """Why handnet does not import ``class_name`` (catalogue.REFUSED, or: a custom class), or
    None when it does."""
    name = canonical(class_name)
    if name in KERAS_LAYERS or name in MODEL_AND_INPUT:
        return None
    if not isinstance(name, str):
        return CUSTOM
    return REFUSED.get(name) or CODE_CLASSES.get(name) or OPERATIONS.get(name) or CUSTOM


def keras_classes():
    """The public Layer classes of keras.layers (Keras 3.15, aliases included)."""
    return tuple(sorted({*REFUSED, *ALIASES, *KERAS_LAYERS, "InputLayer"} - set(ALIAS_ONLY)))


def status(class_name):
    """One row of the catalogue: "supported (<its family file>)", "not imported: <why>", or an
    alias's."""
    if class_name in ALIASES:
        name = ALIASES[class_name]
        return f"alias of {name} (files name {name}): {status(name)}"
    mapping = KERAS_LAYERS.get(class_name)
    if mapping is not None:
        return f"supported (maps/{mapping.from_keras.__module__.rsplit('.', 1)[-1]}.py)"
    reason = refusal(class_name)
    return "supported (a model's input)" if reason is None else f"not imported: {reason}"


def markdown_table():
    """The table of docs/keras.md: every Keras 3 layer class and its status."""
    lines = ["| Keras 3 layer class | handnet |", "|---|---|"]
    lines += [f"| {name} | {status(name)} |" for name in keras_classes()]
    return "\n".join(lines) + "\n"


def unknown_layer_error(class_name, name):
    """The refusal of a class handnet does not import: the catalogue's reason for a Keras
    class, and for any other (a custom class) the list of what handnet reads."""
    article = "an" if str(class_name)[:1] in "AEIOU" else "a"
    reason = refusal(class_name)
    if isinstance(class_name, str) and (class_name in REFUSED or class_name in CODE_LAYERS
                                        or class_name in OPERATIONS
                                        or canonical(class_name) in REFUSED):
        return HandnetError(f"Keras layer {name!r} is {article} {class_name}: {reason}")
    return HandnetError(
        f"Keras layer {name!r} is {article} {class_name}, which handnet does not have ({reason}); "
        f"handnet reads {', '.join(supported_keras_classes())}"
    )


def layer_from_keras(class_name, config):
    """The handnet layer for one Keras layer {"class_name", "config"}; raises on anything
    unsupported."""
    mapping = KERAS_LAYERS.get(canonical(class_name))
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


def keras_class_of(layer):
    """The Keras class name a handnet layer is written as."""
    mapping = BY_HANDNET_CLASS.get(type(layer))
    return mapping.keras_class if mapping is not None else layer_to_keras(layer)[0]


def keras_layer_entry(layer):
    """A built handnet layer as Keras 3 writes a layer into a model's config.json (plain data)."""
    keras_class, keras_config = layer_to_keras(layer)
    common = {"name": layer.name, "trainable": layer.trainable, "dtype": dtype_policy(layer.dtype)}
    mapping = BY_HANDNET_CLASS[type(layer)]
    keras_common = mapping.keras_common
    build_config = (
        mapping.build_config(layer) if mapping.build_config is not None
        else {"input_shape": batch_shapes(layer.input_shape)}
    )
    return {
        "module": "keras.layers",
        "class_name": keras_class,
        "config": {
            **{key: value for key, value in common.items() if key in keras_common},
            **keras_config,
        },
        "registered_name": None,
        "build_config": build_config,
    }


def batch_shapes(shape):
    """A per-sample shape (or a list of them) with Keras's batch axis: [None, …]."""
    if shape and isinstance(shape[0], (list, tuple)):
        return [[None, *s] for s in shape]
    return [None, *shape]
