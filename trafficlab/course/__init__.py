"""The course: helpers the notebooks call, and the instructor's release and autograde steps.

In a notebook::

    from trafficlab import course
    lab = course.start_lab()                 # Lab(find_home()), then lab.up()
    course.apply_file(lab, "canary.yaml")    # apply your answer, wait until Envoy serves it
    course.chart(lab.send(requests=2000), expected={"v1": 0.9, "v2": 0.1})
    lab.check("canary")                      # the self-check

For the instructor: ``python -m trafficlab.course release`` writes ``notebooks/`` from
``solutions/notebooks/`` and builds the student bundle ``release/student/`` (no answers, no
hidden checks), and ``python -m trafficlab.course autograde DIR`` grades a folder of
submitted notebooks (see :mod:`trafficlab.course.release`, :mod:`trafficlab.course.bundle`
and :mod:`trafficlab.course.autograde`).
"""

from __future__ import annotations

from trafficlab.course.answers import apply_file, route_yaml, show_route
from trafficlab.course.charts import chart, split_figure, stages_figure
from trafficlab.course.labs import deploy, find_home, reset_lab, start_lab, wait_pods
from trafficlab.course.load import under_load
from trafficlab.course.observe import observe, set_env
from trafficlab.course.rollouts import rollout, rollout_figure
from trafficlab.course.scoring import check, score

__all__ = [
    "apply_file",
    "chart",
    "check",
    "deploy",
    "find_home",
    "observe",
    "reset_lab",
    "rollout",
    "rollout_figure",
    "route_yaml",
    "score",
    "set_env",
    "show_route",
    "split_figure",
    "stages_figure",
    "start_lab",
    "under_load",
    "wait_pods",
]
