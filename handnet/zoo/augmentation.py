"""Augmentation as layers at the model's input (the Keras way), from RandomAffine's settings.

    settings = {"rotation": 10, "shift": 0.1, "scale": [0.9, 1.1]}     # best's recipe
    model.fit(x, y, augment=augment.RandomAffine(**settings))        # handnet's way
    stack = augmentation_layers(settings)  # [RandomRotation, RandomTranslation, RandomZoom]

The two ways train on the same kinds of images; they differ in three details:

- ``fit(augment=…)`` warps each image once, with one affine map (rotation, scale and shift
  composed). The layers, in training, run as one step of the execution plan
  (handnet.layers.fused.WarpChain): each draws its own parameters, and the image is sampled
  once at the composed map, so it is interpolated once, as RandomAffine does, not three times
  in a row as Keras would (``compile(fuse=False)`` runs them one by one).
- RandomAffine draws the scale s ~ U(low, high); Keras's RandomZoom draws the zoom z ~
  U(1 + a, 1 + b) and reads the source at z·(p - c) + c, which scales the digit by 1/z. The
  layers take a = 1/high - 1 and b = 1/low - 1, so the scales span the same range, [low, high]
  (their distribution is that of 1/z, denser towards low).
- The layers are part of the model: they are saved with it, exported to Keras, shown by
  ``summary`` and ``explain``, and are the identity at inference, as in Keras.

Outside the image the layers read 0 (``fill_mode="constant"``), as RandomAffine does; Keras's
default is "reflect", which would mirror a stroke touching the border. Elastic distortion has no
Keras layer: those settings are refused here, with the reason.
"""

from .. import augment, layers
from ..errors import HandnetError

#: Outside the picture a digit's background is black: pad with zeros, as RandomAffine does.
FILL = {"fill_mode": "constant", "fill_value": 0.0}


def augmentation_layers(settings):
    """The Keras augmentation layers that draw what ``augment.RandomAffine(**settings)`` draws,
    in the order RandomFlip, RandomRotation, RandomTranslation, RandomZoom (a part that is off
    gives no layer). ``settings``: RandomAffine's arguments, as in a TrainingRecipe."""
    # RandomAffine checks and normalizes the settings (ranges, pairs, fractions) itself.
    affine = augment.RandomAffine(**settings)
    if affine.elastic is not None:
        raise HandnetError(
            "elastic distortion has no Keras layer, so it cannot run as layers at the input; "
            "train with fit(augment=…) (handnet train without --augment-layers)"
        )
    stack = []
    if affine.flip:
        if affine.flip != 0.5:
            raise HandnetError(
                f"Keras's RandomFlip mirrors half the images; flip={affine.flip:g} has no layer"
            )
        stack.append(layers.RandomFlip("horizontal"))
    if affine.rotation:
        stack.append(layers.RandomRotation(affine.rotation / 360, **FILL))
    if any(affine.shift):
        down, right = affine.shift
        stack.append(layers.RandomTranslation(down, right, **FILL))
    low, high = affine.scale
    if (low, high) != (1.0, 1.0):
        # scale s = 1/z: z in [1/high, 1/low], the factors are z - 1 at both ends.
        stack.append(layers.RandomZoom((1 / high - 1, 1 / low - 1), **FILL))
    return stack
