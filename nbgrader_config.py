"""nbgrader's configuration for the TrafficLab course.

The course's folders, in nbgrader's terms (``{nbgrader_step}/{student_id}/{assignment_id}``):

- source (the instructor's notebooks, with solutions and hidden tests): ``solutions/notebooks/``
  = step ``solutions``, student ``.``, assignment ``notebooks``;
- release (the student versions): ``notebooks/`` = step ``.``, student ``.``, assignment
  ``notebooks``.

So nbgrader's own command writes the same student notebooks as ``make release``
(``python -m trafficlab.course release``, the supported way, which runs the same
preprocessors with the same settings)::

    nbgrader generate_assignment notebooks --no-db --force

Grading: use ``make autograde SUBMISSIONS=DIR`` (``python -m trafficlab.course autograde``).
It does what nbgrader's ``autograde`` does (restore the test and locked cells, hidden tests
included; execute; grade each test cell by nbgrader's own rule) and also gives each notebook
its own fresh, isolated lab (``TRAFFICLAB_HOME`` in a temporary folder, the local backend),
which nbgrader's command cannot: it runs every notebook with the instructor's environment, so
a notebook would use whatever lab it finds. The timeouts below serve both.
"""

from __future__ import annotations

from pathlib import Path

from trafficlab.course.execute import CELL_TIMEOUT, STARTUP_TIMEOUT, cell_timeout
from trafficlab.course.release import CODE_STUB, TEXT_STUB

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - nbgrader provides it

c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "."
c.CourseDirectory.course_id = "trafficlab"

# What a solution region becomes: "#" is a comment in Python and in the YAML of the
# %%writefile cells alike.
c.ClearSolutions.code_stub = {"python": CODE_STUB}
c.ClearSolutions.text_stub = TEXT_STUB

# Traffic checks take a while: each cell may say how long it may run (metadata
# trafficlab.timeout); the others get CELL_TIMEOUT seconds.
c.Execute.timeout = CELL_TIMEOUT
c.Execute.startup_timeout = STARTUP_TIMEOUT
c.Execute.timeout_func = cell_timeout
c.Execute.interrupt_on_timeout = True
