#!/usr/bin/env python3
"""Task 2: the Gram matrix of a random layer output."""
import tensorflow as tf

NST = __import__('2-neural_style').NST


if __name__ == '__main__':
    tf.random.set_seed(0)
    input_layer = tf.random.normal((1, 28, 30, 3))
    print(NST.gram_matrix(input_layer))
