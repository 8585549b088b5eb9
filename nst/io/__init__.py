"""Files and images: what every part reads and writes.

files (regular-file checks, atomic and hash-checked writes, output claims) and
images (reading, resizing and saving RGB images, the sample images).
"""

from nst._exports import lazy

__getattr__ = lazy(__name__, {"read_rgb": "images", "save_rgb": "images", "ImageError": "images",
                              "FileProblem": "files"})
__all__ = ["read_rgb", "save_rgb", "ImageError", "FileProblem"]
