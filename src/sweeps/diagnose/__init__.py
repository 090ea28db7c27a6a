"""Label one run's loss curves with a symptom from the explainer's table (healthy, diverged,
stalled, oscillating, overfitting), its likely cause and the Hydra overrides that fix it.
Pure: numbers and an optional config mapping in, a Diagnosis out (no torch, no mlflow)."""

from sweeps.diagnose.label import diagnose
from sweeps.diagnose.rounds import next_round
from sweeps.diagnose.thresholds import DEFAULT, SYMPTOMS, Thresholds
from sweeps.diagnose.verdict import Diagnosis

__all__ = ["DEFAULT", "SYMPTOMS", "Diagnosis", "Thresholds", "diagnose", "next_round"]
