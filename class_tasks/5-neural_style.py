#!/usr/bin/env python3
"""Task 5 of the NST class.

It adds style_cost: the style layers weighted evenly.

The class is built by neural_style.task_class, the one implementation of
every task; import it as the spec's mains do:
``__import__('5-neural_style').NST``.
"""
from neural_style import task_class

NST = task_class(5, __name__)
