"""The notebook's helpers, under the name the notebook's cells import.

The code lives in :mod:`nst.classroom.notebook_helpers`.
"""

from nst.classroom.notebook_helpers import (check_printed, check_printed_matrix, contact_sheet,
                                            displayable, pick_image_pair, plot_costs, show_side_by_side)

__all__ = ["check_printed", "check_printed_matrix", "contact_sheet", "displayable", "pick_image_pair", "plot_costs",
           "show_side_by_side"]
