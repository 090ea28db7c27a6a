"""The Diagnosis a run gets: symptom, cause, fix, alternatives and evidence."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Diagnosis:
    """The verdict for one run: a symptom from SYMPTOMS, why, THE prescribed fix (Hydra
    overrides applied together: one per fault found), other options to try instead
    (``alternatives``: each an override or a space-separated compound) and the numbers that
    decided it."""

    symptom: str
    cause: str
    fix: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    alternatives: list[str] = field(default_factory=list)
    # How far the deciding measure was from its threshold, as a factor >= 1 (the symptom's
    # measure over its threshold; for a healthy run, the nearest rule's threshold over its
    # measure), and what that makes the label: "clear" or "borderline".
    margin: Optional[float] = None
    confidence: str = ""

    def fix_str(self) -> str:
        """The fix overrides, space-separated ("" for a healthy run): apply all of them. Fixes
        in words or another script's terms (``lr: 3.0 -> 0.3``) are separated by "; "."""
        return ("; " if any(" " in f for f in self.fix) else " ").join(self.fix)

    def markdown(self) -> str:
        """A short markdown explanation of the verdict and its evidence (a run description)."""
        lines = [f"**{self.symptom}**: {self.cause}", ""]
        if self.confidence:
            how = f": the deciding measure is {self.margin:.3g}x from its threshold" \
                if self.margin is not None and math.isfinite(self.margin) else ""
            lines += [f"Confidence: {self.confidence}{how}", ""]
        if self.fix:
            lines += ["Fix: " + " ".join(f"`{f}`" for f in self.fix), ""]
        if self.alternatives:
            lines += ["Or: " + ", ".join(f"`{f}`" for f in self.alternatives), ""]
        if self.evidence:
            lines += ["| evidence | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in self.evidence.items()]
        return "\n".join(lines).rstrip() + "\n"

