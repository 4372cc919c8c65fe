"""A Vision Transformer for 28×28 digits (Dosovitskiy et al., 2021), built as a graph.

    image (28, 28, 1)
      ─ Conv2D d, kernel = stride = p      cut into (28/p)² patches, each projected to d numbers
      ─ Reshape (T, d)                     T = (28/p)² tokens: 49 for p = 4
      ─ position embedding                 + a learned vector per token position
      ─ encoder block × L:                 pre-LayerNorm, residual
            h = x + MultiHeadAttention(LN(x), LN(x))
            y = h + Dense_d(GELU(Dense_m(LN(h))))
      ─ LayerNorm ─ GlobalAveragePooling1D (the mean token) ─ Dropout ─ Dense 10 softmax

A convolution whose kernel equals its stride sees each patch once and never overlaps: it is
the patch embedding, one (p·p·C → d) matrix applied to every patch. Attention itself does not
know where a token came from (it is equivariant to permutations of the tokens), so a learned
vector per position is added; without it the network would see a bag of patches.

Keras's core layers have no position embedding layer. ``position_embedding`` is an EinsumDense
with equation "abc,c->abc" and bias axes "bc": y[n, t, c] = x[n, t, c]·s[c] + P[t, c], a scale
s per feature (initialized to ones) and a bias P per position and feature — that bias is the
position embedding, and the file Keras reads holds a plain EinsumDense.

The mean of the tokens stands in for a class token: for digits it does as well, and it needs
no extra learned input (which Keras's core layers could not express either).
"""

from .. import layers
from ..model import Model


def position_embedding(tokens, features, name="position_embedding"):
    """An EinsumDense adding a learned (tokens, features) vector: x·s + P (module docstring)."""
    return layers.EinsumDense(
        "abc,c->abc",
        output_shape=(tokens, features),
        bias_axes="bc",
        kernel_initializer="ones",
        bias_initializer="zeros",  # each position gets its own gradient from the first step
        name=name,
    )


def encoder_block(x, heads, key_dim, mlp, dropout=0.0, name="block"):
    """Pre-LN transformer encoder block on tokens x (N, T, d): two residual branches."""
    features = x.per_sample_shape[-1]
    h = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln1")(x)
    h = layers.MultiHeadAttention(heads, key_dim, dropout=dropout, name=f"{name}_attention")(h, h)
    x = layers.Add(name=f"{name}_add1")([x, h])
    h = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln2")(x)
    h = layers.Dense(mlp, activation="gelu", name=f"{name}_mlp1")(h)
    h = layers.Dense(features, name=f"{name}_mlp2")(h)
    return layers.Add(name=f"{name}_add2")([x, h])


def vit_model(
    input_shape=(28, 28, 1),
    patch=4,
    features=64,
    depth=4,
    heads=4,
    mlp=128,
    classes=10,
    dropout=0.1,
    seed=None,
    name="vit",
):
    """The Model of the module docstring: ``depth`` blocks of ``heads`` heads of
    features/heads numbers each, an MLP of ``mlp`` units, on (H/patch)·(W/patch) tokens."""
    height, width = input_shape[:2]
    tokens = (height // patch) * (width // patch)
    inputs = layers.Input(input_shape, name="image")
    x = layers.Conv2D(features, patch, strides=patch, name="patch_embedding")(inputs)
    x = layers.Reshape((tokens, features), name="tokens")(x)
    x = position_embedding(tokens, features)(x)
    for block in range(1, depth + 1):
        x = encoder_block(x, heads, features // heads, mlp, name=f"block{block}")
    x = layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = layers.GlobalAveragePooling1D(name="mean_token")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="classifier")(x)
    return Model(inputs, outputs, name=name, seed=seed)


def small_vit_model(seed=None, name="vit"):
    """The same layer types at toy sizes, for finite-difference checks: 8×8 inputs cut into
    4 patches of 4×4, 4 features, 2 heads, one block, 3 classes."""
    return vit_model(
        input_shape=(8, 8, 1), patch=4, features=4, depth=1, heads=2, mlp=6, classes=3,
        dropout=0.0, seed=seed, name=name,
    )
