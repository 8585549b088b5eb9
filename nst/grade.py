"""``python -m nst.grade``: the documented command of the classroom's autograder.

The grader lives in :mod:`nst.classroom` (``grade_report`` and the modules it
names); this module keeps the command and ``from nst.grade import main`` working.
"""

from nst.classroom.grade_report import main

if __name__ == "__main__":
    raise SystemExit(main())
