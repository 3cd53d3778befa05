"""TrafficLab: a hands-on lab for progressive delivery with the Kubernetes Gateway API.

>>> from trafficlab import Lab
>>> lab = Lab()          # the lab in ./.lab (or $TRAFFICLAB_HOME)
>>> lab.up()             # doctest: +SKIP
"""

from __future__ import annotations

from trafficlab._errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    LabNotRunningError,
    NotFoundError,
    ProxyError,
    TrafficLabError,
    ValidationError,
)
from trafficlab.lab import ApplyResult, Lab

__all__ = [
    "AlreadyExistsError",
    "ApplyResult",
    "BackendError",
    "ConflictError",
    "Lab",
    "LabNotRunningError",
    "NotFoundError",
    "ProxyError",
    "TrafficLabError",
    "ValidationError",
]

__version__ = "0.1.0"
