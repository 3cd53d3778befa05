"""The in-memory task store of one Task API process.

Each process (each "pod") keeps its own tasks; nothing is shared or persisted,
which is what a lab about routing needs and no more. The app runs every endpoint
on one event loop, so no lock is needed.

Example:
    >>> store = TaskStore()
    >>> store.create({"title": "write tests", "done": False})
    {'id': 1, 'title': 'write tests', 'done': False}
    >>> store.update(1, {"done": True})["done"]
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Task", "TaskStore"]

Task = dict[str, Any]
"""A task as JSON: ``id`` plus the fields the app's models allow."""


class TaskStore:
    """Tasks by id; ids start at 1 and are never reused."""

    def __init__(self) -> None:
        """Start empty."""
        self._tasks: dict[int, Task] = {}
        self._next_id = 1

    def list(self) -> list[Task]:
        """All tasks, oldest first (copies)."""
        return [dict(task) for task in self._tasks.values()]

    def get(self, task_id: int) -> Task | None:
        """The task with ``task_id`` (a copy), or None."""
        task = self._tasks.get(task_id)
        return None if task is None else dict(task)

    def create(self, fields: Mapping[str, Any]) -> Task:
        """Store a new task with the next id and return it."""
        task: Task = {"id": self._next_id, **fields}
        self._tasks[self._next_id] = task
        self._next_id += 1
        return dict(task)

    def replace(self, task_id: int, fields: Mapping[str, Any]) -> Task | None:
        """Replace every field of a task (PUT); None if there is no such task."""
        if task_id not in self._tasks:
            return None
        task: Task = {"id": task_id, **fields}
        self._tasks[task_id] = task
        return dict(task)

    def update(self, task_id: int, fields: Mapping[str, Any]) -> Task | None:
        """Change only the given fields of a task (PATCH); None if there is no such task."""
        task = self._tasks.get(task_id)
        if task is None:
            return None
        task.update(fields)
        task["id"] = task_id
        return dict(task)

    def delete(self, task_id: int) -> bool:
        """Remove a task; False if there was none."""
        return self._tasks.pop(task_id, None) is not None

    def __len__(self) -> int:
        """How many tasks are stored."""
        return len(self._tasks)
