"""The feed-forward method (AdaIN, Huang and Belongie 2017): one pass through an encoder and a decoder.

stylizer (FastStylizer: styles encoded once, alpha, colour, masks), network (the
encoder and decoder graphs, XLA once a size repeats) and convolutions (Winograd and
im2col forms of the 3x3 convolutions, chosen per layer).
"""

from nst._exports import lazy

__getattr__ = lazy(__name__, {"FastStylizer": "stylizer", "FastError": "stylizer"})
__all__ = ["FastStylizer", "FastError"]
