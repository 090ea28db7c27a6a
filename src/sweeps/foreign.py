"""Labels on runs the tool did not create, without clobbering what their owner wrote: a tag of
the same name the tool did not write (the user's own ``symptom``) is left alone and the label
goes to ``sweeps.symptom`` etc. instead; a run description the tool did not write is kept, the
diagnosis added below it in a marked block that the next analysis replaces."""

from __future__ import annotations

import re
from typing import Mapping

LABELS = ("symptom", "cause", "fix", "symptom_confidence")
KEYS_TAG = "sweeps.label_keys"  # which tag names hold the tool's labels: plain | prefixed
PREFIX = "sweeps."
BEGIN, END = "<!-- sweeps:diagnosis -->", "<!-- /sweeps:diagnosis -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)


def prefixed(tags: Mapping[str, str], role_tag: str) -> bool:
    """Must the tool's labels on this run go under sweeps.* names? Yes once it did so, or when
    a run it did not create (no ``role_tag``) has a label tag it never wrote."""
    if tags.get(KEYS_TAG) in ("plain", "prefixed"):
        return tags[KEYS_TAG] == "prefixed"
    if tags.get(role_tag):
        return False
    return any(k in tags for k in LABELS)


def existing_label(tags: Mapping[str, str], role_tag: str) -> str:
    """The symptom the tool wrote on this run before ("" if none)."""
    return tags.get(PREFIX + "symptom", "") if prefixed(tags, role_tag) else tags.get("symptom", "")


def label_tags(tags: Mapping[str, str], role_tag: str, note_tag: str,
               labels: Mapping[str, str], note: str) -> dict[str, str]:
    """The tags to write for one run: ``labels`` (symptom, cause, fix, symptom_confidence) under
    their own names or sweeps.* ones, and the description with the diagnosis in it."""
    foreign = not tags.get(role_tag)
    pre = prefixed(tags, role_tag)
    out = {(PREFIX + k if pre else k): v for k, v in labels.items()}
    if foreign:
        out[KEYS_TAG] = "prefixed" if pre else "plain"
        mine = f"{BEGIN}\n{note.rstrip()}\n{END}"
        theirs = tags.get(note_tag, "")
        if BEGIN in theirs:
            out[note_tag] = _BLOCK.sub(lambda _: mine, theirs, count=1)
        else:
            out[note_tag] = f"{theirs.rstrip()}\n\n{mine}" if theirs.strip() else mine
    else:
        out[note_tag] = note
    return out
