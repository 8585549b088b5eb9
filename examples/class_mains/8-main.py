#!/usr/bin/env python3
"""Task 8: the costs and gradients at the content image."""
import matplotlib.image as mpimg
import tensorflow as tf

NST = __import__('8-neural_style').NST


if __name__ == '__main__':
    # Adapted: the spec reads the images from the working directory; here
    # they are the project's samples in images/ (python -m nst.io.images).
    style_image = mpimg.imread("images/starry_night.jpg")
    content_image = mpimg.imread("images/golden_gate.jpg")

    nst = NST(style_image, content_image)
    generated_image = tf.Variable(nst.content_image)
    grads, J_total, J_content, J_style = nst.compute_grads(generated_image)
    print(J_total)
    print(J_content)
    print(J_style)
    print(grads)
