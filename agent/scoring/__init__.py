"""From per-frame model outputs to a per-track verdict and alert transitions."""

from agent.scoring.fusion import Fusion, calibrate
from agent.scoring.rolling import RollingScore, Transition, Verdict

__all__ = ["Fusion", "RollingScore", "Transition", "Verdict", "calibrate"]
