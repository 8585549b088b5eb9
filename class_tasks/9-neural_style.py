#!/usr/bin/env python3
"""Task 9 of the NST class.

It adds generate_image: Adam from the content image, progress without var.

The class is built by neural_style.task_class, the one implementation of
every task; import it as the spec's mains do:
``__import__('9-neural_style').NST``.
"""
from neural_style import task_class

NST = task_class(9, __name__)
