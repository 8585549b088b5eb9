#!/usr/bin/env python3
"""Task 1 of the NST class.

It adds load_model: the VGG-19 cost model, built by the constructor.

The class is built by neural_style.task_class, the one implementation of
every task; import it as the spec's mains do:
``__import__('1-neural_style').NST``.
"""
from neural_style import task_class

NST = task_class(1, __name__)
