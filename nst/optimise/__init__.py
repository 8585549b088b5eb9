"""The optimisation method (Gatys et al.): costs on VGG-19 features, optimised over the image.

settings (the one dataclass of every option and default), vgg (the network), costs
and graphs (the criterion), optimizers and lbfgs (Adam, L-BFGS), colour (keeping
the photo's colours), stylize (the engine: coarse-to-fine scales, progress events,
never a file) and pictures (what a run's record looks like: side-by-side sheets,
cost plots, GIFs, a notebook's live preview).
"""

from nst._exports import lazy

# (The function stylize is not among them: the module of that name would shadow it once imported.)
__getattr__ = lazy(__name__, {"Settings": "settings", "Stylizer": "stylize", "Result": "stylize"})
__all__ = ["Settings", "Stylizer", "Result"]
