#!/usr/bin/env python3
"""Task 3 of the NST class.

It adds generate_features: the style Gram matrices and the content feature.

The class is built by neural_style.task_class, the one implementation of
every task; import it as the spec's mains do:
``__import__('3-neural_style').NST``.
"""
from neural_style import task_class

NST = task_class(3, __name__)
