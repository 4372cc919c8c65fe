"""The zoo: named networks for 28×28 images (``architectures``) and the recipes they train
with (``recipes``: TrainingRecipe, make_optimizer, and ``train``, the one way handnet trains
a network for its commands)."""

from . import architectures, recipes
from .architectures import build, get
from .recipes import TrainingRecipe, make_optimizer, train

__all__ = ["TrainingRecipe", "architectures", "build", "get", "make_optimizer", "recipes", "train"]
