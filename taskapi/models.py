"""Request bodies of the task endpoints, for v1 and for every later version.

v2 differs visibly from v1: its tasks carry ``priority``. Unknown fields are
ignored rather than rejected, so a client that sends ``priority`` keeps working
while a canary splits its requests between v1 and v2.

Example:
    >>> TaskCreateV2(title="ship v2").model_dump()
    {'title': 'ship v2', 'description': '', 'done': False, 'priority': 'medium'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Priority",
    "TaskCreate",
    "TaskCreateV2",
    "TaskModels",
    "TaskPatch",
    "TaskPatchV2",
    "task_models",
]

Priority = Literal["low", "medium", "high"]
"""The v2 priority of a task."""

_TITLE = Field(min_length=1, max_length=200, description="What to do.")
_DESCRIPTION = Field(default="", max_length=2000, description="Free text.")


class TaskCreate(BaseModel):
    """Body of ``POST /tasks`` and ``PUT /tasks/{task_id}`` (v1)."""

    model_config = ConfigDict(extra="ignore")

    title: str = _TITLE
    description: str = _DESCRIPTION
    done: bool = False


class TaskCreateV2(TaskCreate):
    """Body of ``POST /tasks`` and ``PUT /tasks/{task_id}`` (versions other than v1)."""

    priority: Priority = "medium"


class TaskPatch(BaseModel):
    """Body of ``PATCH /tasks/{task_id}`` (v1): only the fields sent change.

    The defaults are None only to tell "not sent" apart; an explicit null is
    rejected (422), because a task's fields are never null.
    """

    model_config = ConfigDict(extra="ignore")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    done: bool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _reject_null(cls, value: object) -> object:
        # Runs only for fields that were sent (defaults are not validated).
        if value is None:
            raise ValueError("must not be null; leave the field out to keep it")
        return value


class TaskPatchV2(TaskPatch):
    """Body of ``PATCH /tasks/{task_id}`` (versions other than v1)."""

    priority: Priority | None = None


@dataclass(frozen=True)
class TaskModels:
    """The body models one app uses: for create/replace, and for partial update."""

    create: type[TaskCreate]
    patch: type[TaskPatch]


def task_models(has_priority: bool) -> TaskModels:
    """The v2 models when tasks have a priority, else the v1 models."""
    if has_priority:
        return TaskModels(TaskCreateV2, TaskPatchV2)
    return TaskModels(TaskCreate, TaskPatch)
