"""The local lab's Kubernetes API: the subset kubectl and the ``kubernetes`` client need.

It runs in the lab daemon beside the private lab API, over the same Controller: reads come
from the store (and the pod manager), writes go through the controller's apply, patch and
delete, so validation, reconcile and status are the same whichever door a change came in by.
``/work/shared/KUBE_API.md`` maps the requests each kubectl command makes.
"""

from trafficlab.apiserver.server import KubeApiServer

__all__ = ["KubeApiServer"]
