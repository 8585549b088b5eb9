"""``nst weights [--check] [--dir DIR]``: fetch the networks' weights ahead of time, show where they are,
verify them.  The same as ``python -m nst.weights`` (:func:`nst.weights.fetch.main`); every other command
fetches what it needs on first use anyway."""

from nst.weights.fetch import main as fetch_main


def main(argv=None, console: bool = False) -> int:
    return fetch_main(argv, prog="nst weights")
