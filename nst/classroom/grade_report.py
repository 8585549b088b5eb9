"""Autograder for the classroom notebook's graded functions: the command and its report.

    python -m nst.grade student.ipynb [more.ipynb | folder ...] [--timeout 60] [--jobs 2]

(``nst/grade.py`` keeps that documented command; the grader lives here.)  For
each notebook, :mod:`.grade_extraction` reads the graded functions' source
without running anything; :mod:`.grade_runner` tests each function in a
subprocess of its own (with a time limit and a scratch folder); in that
subprocess :mod:`.grade_cases` runs the assignment's public test cell and the
grader's hidden cases against the reference solutions in
:mod:`nst.classroom.course`, and :mod:`.grade_hints` names the common mistake
a wrong value comes from.  This module adds up the marks and prints them.

This isolates accidents, not attacks: the student's function runs with the
grader's permissions.  Exit status: 0 when every function of every notebook
passes, 1 when some fail, 2 when an input cannot be used.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nst.classroom import GRADED
from nst.classroom.grade_extraction import UnusableInput, extract
from nst.classroom.grade_runner import DEFAULT_TIMEOUT, run_function

MAX_TIMEOUT = 86400.0  # --timeout's upper bound (one day); also keeps queue waits within their limit


def grade_notebook(path: Path, timeout: float = DEFAULT_TIMEOUT, jobs: int = 2) -> dict:
    """Grade one notebook; returns {"path", "functions": [result...], "seconds", "passed"}."""
    start = time.monotonic()
    found = extract(path)
    entries = {name: found.get(name, {"error": f"{name} is not defined with def at the top level of a code cell"})
               for name in GRADED}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda item: run_function(item[0], item[1], timeout), entries.items()))
    for result in results:
        cases = result.get("cases", [])
        result["passed_cases"] = sum(case["passed"] for case in cases)
        result["total_cases"] = len(cases)
        result["passed"] = bool(cases) and "error" not in result and all(case["passed"] for case in cases)
    return {"path": str(path), "functions": results, "seconds": time.monotonic() - start,
            "passed": all(r["passed"] for r in results)}


def format_report(report: dict) -> str:
    lines = [f"== {report['path']}"]
    for result in report["functions"]:
        status = "PASS" if result["passed"] else "FAIL"
        score = f"{result['passed_cases']}/{result['total_cases']}" if result["total_cases"] else "0/-"
        lines.append(f"  {result['name']:<26} {status}  {score} cases")
        if result.get("error"):
            lines.append(f"      error: {result['error']}")
        hints, shown = [], {}
        for case in result.get("cases", []):
            if not case["passed"]:
                if case["detail"] in shown:  # the same failure again: count it instead of repeating it
                    shown[case["detail"]] += 1
                    continue
                shown[case["detail"]] = 0
                lines.append(f"      x {case['case']}: {case['detail']}")
                if case.get("hint") and case["hint"] not in hints:
                    hints.append(case["hint"])
        repeated = sum(shown.values())
        if repeated:
            lines.append(f"      x ... and {repeated} more case{'s' if repeated > 1 else ''} failing the same way")
        if result.get("hint") and result["hint"] not in hints and result["hint"] != result.get("error"):
            hints.append(result["hint"])
        for hint in hints:
            lines.append(f"      hint: {hint}")
    passed = sum(r["passed"] for r in report["functions"])
    lines.append(f"  score: {passed}/{len(report['functions'])} functions "
                 f"({sum(r['passed_cases'] for r in report['functions'])}/"
                 f"{sum(r['total_cases'] for r in report['functions'])} cases) in {report['seconds']:.1f} s")
    return "\n".join(lines)


def collect(arguments) -> tuple[list[Path], list[str]]:
    """The notebooks named (files, or the .ipynb files of folders) and a line per argument that names none.

    Each path is looked at with ``stat``, never opened: a FIFO or a device given by mistake is
    refused as what it is (opening it to read would block), and one that cannot be looked at
    (a folder in its path without search permission) says so, instead of "no such file".
    """
    from nst.io.files import FileProblem, kind_of, stat_path

    notebooks, problems = [], []
    for argument in arguments:
        path = Path(argument)
        try:
            info = stat_path(path, "notebook path")
        except FileProblem as error:
            problems.append(str(error))
            continue
        if info is None:
            problems.append(f"{path}: no such file or folder")
        elif stat.S_ISDIR(info.st_mode):
            found = sorted(p for p in path.glob("*.ipynb") if p.is_file())
            if not found:
                problems.append(f"{path}: no .ipynb files in this folder")
            notebooks.extend(found)
        elif stat.S_ISREG(info.st_mode):
            notebooks.append(path)
        else:
            problems.append(f"{path} is {kind_of(info.st_mode)}, not a notebook file; give a .ipynb file "
                            f"or a folder of them")
    return notebooks, problems


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` and exit status 2 (no usage dump)."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _seconds(text: str) -> float:
    """--timeout's value: a finite number of seconds in (0, MAX_TIMEOUT] (inf, nan and -1 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not 0 < value <= MAX_TIMEOUT:  # also false for nan
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def _json_path_problem(target: Path, notebooks: list[Path]) -> str | None:
    """Why --json cannot be written to ``target`` (checked before grading), or None."""
    folder = target.parent
    if not folder.is_dir():
        return f"--json {target}: the folder {folder} does not exist; create it or choose another path"
    if target.is_dir():
        return f"--json {target} is a folder; give a file name"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"--json {target}: the folder {folder} is not writable; choose another path"
    for notebook in notebooks:
        try:
            if target.samefile(notebook):
                return f"--json {target} is one of the notebooks to grade; choose another path"
        except OSError:  # one of the two does not exist (yet): not the same file
            pass
    return None


def write_json_atomically(target: Path, data) -> None:
    """Write ``data`` as JSON to a temporary file beside ``target``, then rename it over ``target``.

    Readers see the old file or the complete new one, never a partial one;
    on any failure the temporary file is removed and ``target`` is untouched.
    """
    from nst.io.files import atomic_path

    with atomic_path(target) as temporary, open(temporary, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=1, default=str)
        stream.flush()
        os.fsync(stream.fileno())


def _grade_each(notebooks: list[Path], timeout: float, jobs: int, problems: list[str]) -> list[dict]:
    """Reports of the notebooks that could be graded; each failure is added to ``problems`` and the rest go on."""
    reports = []
    for path in notebooks:
        try:
            report = grade_notebook(path, timeout, jobs)
        except UnusableInput as error:
            problems.append(str(error))
            continue
        except Exception as error:  # one notebook's unforeseen failure must not cost the others their marks
            message = (str(error).strip().splitlines() or [""])[0][:200]
            problems.append(f"{path}: could not be graded ({type(error).__name__}: {message}); "
                            "the other notebooks were graded")
            continue
        reports.append(report)
        print(format_report(report), flush=True)
    return reports


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _Parser(prog="python -m nst.grade", description="Grade the graded functions of classroom notebooks.")
    parser.add_argument("paths", nargs="+", help="student notebooks (.ipynb) or folders of them")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
                        help="seconds a student's function may run per function (default: %(default)s)")
    parser.add_argument("--jobs", type=_positive_int, default=2,
                        help="functions graded in parallel (default: %(default)s)")
    parser.add_argument("--json", metavar="FILE", type=Path,
                        help="also write the full results as JSON (replaced whole, never left partial)")
    args = parser.parse_args(argv)
    notebooks, problems = collect(args.paths)
    if args.json is not None and (why := _json_path_problem(args.json, notebooks)):
        parser.error(why)
    reports = _grade_each(notebooks, args.timeout, args.jobs, problems)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if len(notebooks) > 1:
        ungraded = len(notebooks) - len(reports)
        print(f"== {sum(r['passed'] for r in reports)}/{len(reports)} notebooks pass every function"
              + (f"; {ungraded} could not be graded (see the error lines)" if ungraded else ""))
    if args.json is not None:
        try:
            write_json_atomically(args.json, {"reports": reports, "problems": problems})
        except OSError as error:
            print(f"error: could not write --json {args.json} ({error.strerror or error}); the report above "
                  "is complete", file=sys.stderr)
            return 2
    if problems:
        return 2
    return 0 if all(r["passed"] for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
