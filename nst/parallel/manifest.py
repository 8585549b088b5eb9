"""The manifest of a batch's output folder: which items are done, and with which settings.

``OUT_DIR/nst-batch.json`` holds the settings (and their hash) and one entry per
finished output: the input it came from and that input's SHA-256, the output's
SHA-256, the worker, the attempts and the time.  A rerun skips the finished items;
a run whose settings differ from the recorded ones, or an input that changed since
its output was made, is refused unless ``--overwrite``.  The file is rewritten
atomically after every item, so a killed run loses at most the item in flight.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nst.io.files import atomic_path, shown

MANIFEST_NAME = "nst-batch.json"
FORMAT = 1  # bump when the layout changes; older manifests are then refused with a hint


class ManifestError(Exception):
    """The output folder's state forbids the run (one line, says what to do)."""


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _changed(old: dict, new: dict) -> str:
    names = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    return ", ".join(f"{name} {old.get(name)!r} -> {new.get(name)!r}" for name in names[:3]) + (
        ", ..." if len(names) > 3 else "")


class Manifest:
    """Load with :meth:`open`; ask :meth:`is_done`; :meth:`record` each finished item."""

    def __init__(self, folder: Path, settings: dict, items: dict):
        self.path = Path(folder) / MANIFEST_NAME
        self.settings = settings
        self.items = items  # output name -> entry

    @classmethod
    def open(cls, folder, settings: dict, overwrite: bool) -> "Manifest":
        """The folder's manifest for ``settings``: the recorded one, or a fresh one.

        Raises :class:`ManifestError` if the recorded settings differ (unless ``overwrite``)
        or the file is unreadable.
        """
        folder = Path(folder)
        path = folder / MANIFEST_NAME
        if not path.exists():
            return cls(folder, settings, {})
        try:
            recorded = json.loads(path.read_text())
            items, old_settings, old_hash = recorded["items"], recorded["settings"], recorded["settings_hash"]
            if recorded.get("format") != FORMAT or not isinstance(items, dict):
                raise ValueError("unknown format")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ManifestError(f"{shown(path)} is not a readable batch manifest ({error}); give --overwrite to "
                                f"start it afresh, or another output folder") from None
        if old_hash == settings_hash(settings):
            return cls(folder, settings, items)
        if not overwrite:
            raise ManifestError(f"{shown(folder)} holds results made with other settings ({_changed(old_settings, settings)}); "
                                f"give --overwrite to redo them, or another output folder")
        return cls(folder, settings, {})

    def is_done(self, output_name: str, input_sha256: str) -> bool:
        """Whether ``output_name`` was made from this very input with these settings and is still there."""
        entry = self.items.get(output_name)
        return bool(entry) and entry["input_sha256"] == input_sha256 and (self.path.parent / output_name).is_file()

    def changed_input(self, output_name: str, input_sha256: str) -> bool:
        """Whether ``output_name`` is recorded as made from an input whose content has changed since."""
        entry = self.items.get(output_name)
        return bool(entry) and entry["input_sha256"] != input_sha256 and (self.path.parent / output_name).is_file()

    def record(self, output_name: str, entry: dict) -> None:
        """Add a finished item and rewrite the manifest atomically."""
        self.items[output_name] = entry
        self.save()

    def save(self) -> None:
        document = {"format": FORMAT, "settings_hash": settings_hash(self.settings), "settings": self.settings,
                    "items": self.items}
        with atomic_path(self.path) as name:
            Path(name).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
