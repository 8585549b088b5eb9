#!/usr/bin/env python3
"""Task 10 of the NST class.

It adds the variational cost: var, variational_cost, a 4-tuple total_cost.

The class is built by neural_style.task_class, the one implementation of
every task; import it as the spec's mains do:
``__import__('100-neural_style').NST``.
"""
from neural_style import task_class

NST = task_class(10, __name__)
