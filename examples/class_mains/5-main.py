#!/usr/bin/env python3
"""Task 5: the style cost of the content image."""
import matplotlib.image as mpimg
import tensorflow as tf

NST = __import__('5-neural_style').NST


if __name__ == '__main__':
    # Adapted: the spec reads the images from the working directory; here
    # they are the project's samples in images/ (python -m nst.io.images).
    style_image = mpimg.imread("images/starry_night.jpg")
    content_image = mpimg.imread("images/golden_gate.jpg")

    nst = NST(style_image, content_image)
    vgg_input = tf.keras.applications.vgg19.preprocess_input(
        nst.content_image * 255)
    outputs = nst.model(vgg_input)
    style_outputs = outputs[:-1]
    print(nst.style_cost(style_outputs))
