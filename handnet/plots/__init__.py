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

from .activations import layer_outputs, plot_feature_maps
from .attention import attention_weights, plot_attention, rollout
from .confusion import confusion_matrix, plot_confusion_matrix
from .curves import plot_training_curves
from .gallery import plot_misclassified
from .graph import graph_layout, plot_model_graph
from .reconstruction import plot_embedding, plot_reconstructions
from .weights import batch_gradients, plot_first_layer_weights, plot_weight_histograms

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
