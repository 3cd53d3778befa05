"""The local lab's Kubernetes API: the subset kubectl and the ``kubernetes`` client need.

It is the lab daemon's one API, over the Controller: reads come from the store (and the pod
manager), writes go through the controller's apply, patch and delete, so validation, reconcile
and status are the same for kubectl and ``trafficlab``. The lab's own paths (status, shutdown,
healthz) are in ``lab_paths``.
``/work/shared/KUBE_API.md`` maps the requests each kubectl command makes.
"""

from trafficlab.apiserver.server import KubeApiServer

__all__ = ["KubeApiServer"]
