#!/usr/bin/env python3
"""Task 0: the class attributes, the scaled images and the weights."""
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

NST = __import__('0-neural_style').NST


if __name__ == '__main__':
    # Adapted: the spec reads the images from the working directory; here
    # they are the project's samples in images/ (python -m nst.io.images).
    style_image = mpimg.imread("images/starry_night.jpg")
    content_image = mpimg.imread("images/golden_gate.jpg")

    print(NST.style_layers)
    print(NST.content_layer)
    nst = NST(style_image, content_image)
    scaled_style = nst.scale_image(style_image)
    scaled_content = nst.scale_image(content_image)
    print(type(scaled_style), scaled_style.shape, np.min(scaled_style),
          np.max(scaled_style))
    print(type(scaled_content), scaled_content.shape, np.min(scaled_content),
          np.max(scaled_content))
    print(nst.alpha)
    print(nst.beta)
    print(tf.executing_eagerly())
    for image in (nst.style_image, nst.content_image):
        plt.imshow(image[0])
        plt.show()
