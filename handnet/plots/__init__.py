"""Figures of a model and its training, written to PNG files.

Each function takes plain arrays (or a model) and a path, draws one figure and saves it:

    curves.py       plot_training_curves      loss, accuracy and learning rate per epoch
    confusion.py    plot_confusion_matrix     which classes are taken for which
    gallery.py      plot_misclassified        the most confident mistakes, with probabilities
    weights.py      plot_first_layer_weights  first-layer filters (or Dense units) as pictures
                    plot_weight_histograms    every parameter's values and gradients
    activations.py  plot_feature_maps         one input through every layer
    graph.py        plot_model_graph          the layers as boxes, arrows from inputs to outputs
    attention.py    plot_attention            where a transformer looks: heads and rollout
    reconstruction.py plot_reconstructions    an autoencoder's test digits and its rebuilt ones
                    plot_embedding            codes as points in the plane, coloured by class
"""

import importlib

# Loaded on first use (PEP 562): matplotlib takes half a second to import, and a command that
# draws nothing (``handnet train --no-plots``, the speed run) should not pay for it.
_MODULE_OF = {
    "layer_outputs": "activations",
    "plot_feature_maps": "activations",
    "attention_weights": "attention",
    "plot_attention": "attention",
    "rollout": "attention",
    "confusion_matrix": "confusion",
    "plot_confusion_matrix": "confusion",
    "plot_training_curves": "curves",
    "plot_misclassified": "gallery",
    "graph_layout": "graph",
    "plot_model_graph": "graph",
    "plot_embedding": "reconstruction",
    "plot_reconstructions": "reconstruction",
    "batch_gradients": "weights",
    "plot_first_layer_weights": "weights",
    "plot_weight_histograms": "weights",
}


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__():
    return sorted([*globals(), *_MODULE_OF])


__all__ = [
    "attention_weights",
    "plot_attention",
    "rollout",
    "batch_gradients",
    "confusion_matrix",
    "graph_layout",
    "layer_outputs",
    "plot_confusion_matrix",
    "plot_embedding",
    "plot_feature_maps",
    "plot_first_layer_weights",
    "plot_misclassified",
    "plot_model_graph",
    "plot_reconstructions",
    "plot_training_curves",
    "plot_weight_histograms",
]
