"""``dendrite.explain``: looking inside a model (the design document's 8.1: deep models are
seen as black boxes).

Every attribution function takes a model (any differentiable one: Sequential, functional,
subclassed), a batch ``x`` and a ``target`` (a class index, an array of them, a callable on
the outputs, or None for each sample's top class) and returns a NumPy array shaped like
``x`` (Grad-CAM: like the layer's spatial grid, or the input's with ``upsample=True``):

- ``saliency`` and ``gradient_x_input``: the gradient of the score by the input;
- ``smoothgrad``: the gradient averaged over noisy copies;
- ``integrated_gradients``: the gradient integrated from a baseline (complete: the
  attributions sum to ``f(x) - f(baseline)``);
- ``grad_cam`` and ``grad_cam_plus_plus``: class activation maps of a convolution;
- ``occlusion``: the score drop when a window is covered (gradient-free);
- ``plot``: heat maps over images, tokens or time steps, saved as PNG.

``find_learning_rate`` runs the learning-rate range test on a compiled model.
"""

from dendrite.explain.grad_cam import find_last_conv, grad_cam, grad_cam_plus_plus
from dendrite.explain.integrated_gradients import integrated_gradients
from dendrite.explain.lr_finder import LRFinderResult, find_learning_rate
from dendrite.explain.occlusion import occlusion
from dendrite.explain.plot import plot
from dendrite.explain.saliency import gradient_x_input, saliency
from dendrite.explain.smoothgrad import smoothgrad

__all__ = [
    "LRFinderResult",
    "find_last_conv",
    "find_learning_rate",
    "grad_cam",
    "grad_cam_plus_plus",
    "gradient_x_input",
    "integrated_gradients",
    "occlusion",
    "plot",
    "saliency",
    "smoothgrad",
]
