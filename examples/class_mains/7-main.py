#!/usr/bin/env python3
"""Task 7: the total cost of a noisy copy of the content image."""
import matplotlib.image as mpimg
import tensorflow as tf

NST = __import__('7-neural_style').NST


if __name__ == '__main__':
    # Adapted: the spec reads the images from the working directory; here
    # they are the project's samples in images/ (python -m nst.io.images).
    style_image = mpimg.imread("images/starry_night.jpg")
    content_image = mpimg.imread("images/golden_gate.jpg")

    nst = NST(style_image, content_image)
    # The content image with a little uniform noise, so that the content
    # cost is not 0.
    tf.random.set_seed(0)
    noise = tf.random.uniform(nst.content_image.shape, -0.1, 0.1)
    generated_image = tf.clip_by_value(nst.content_image + noise, 0, 1)
    J_total, J_content, J_style = nst.total_cost(generated_image)
    print(J_total)
    print(J_content)
    print(J_style)
