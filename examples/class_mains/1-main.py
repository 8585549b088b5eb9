#!/usr/bin/env python3
"""Task 1: the summary of the cost model."""
import matplotlib.image as mpimg

NST = __import__('1-neural_style').NST


if __name__ == '__main__':
    # Adapted: the spec reads the images from the working directory; here
    # they are the project's samples in images/ (python -m nst.io.images).
    style_image = mpimg.imread("images/starry_night.jpg")
    content_image = mpimg.imread("images/golden_gate.jpg")

    nst = NST(style_image, content_image)
    nst.model.summary()
