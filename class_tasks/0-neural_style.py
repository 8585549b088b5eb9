#!/usr/bin/env python3
"""Task 0 of the NST class.

It adds class attributes, the constructor's checks and scale_image.

The class is built by neural_style.task_class, the one implementation of
every task; import it as the spec's mains do:
``__import__('0-neural_style').NST``.
"""
from neural_style import task_class

NST = task_class(0, __name__)
