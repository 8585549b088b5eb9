#!/usr/bin/env python3
"""Task 4: the style cost of the first style layer, content image."""
import matplotlib.image as mpimg
import tensorflow as tf

NST = __import__('4-neural_style').NST


if __name__ == '__main__':
    # Adapted: the spec reads the images from the working directory; here
    # they are the project's samples in images/ (python -m nst.io.images).
    style_image = mpimg.imread("images/starry_night.jpg")
    content_image = mpimg.imread("images/golden_gate.jpg")

    nst = NST(style_image, content_image)
    vgg_input = tf.keras.applications.vgg19.preprocess_input(
        nst.content_image * 255)
    outputs = nst.model(vgg_input)
    print(nst.layer_style_cost(outputs[0], nst.gram_style_features[0]))
