"""The traffic-engineer tools: generate routes that are right, review routes and commands that may not be.

- :func:`generate` (``trafficlab generate``): canary, progressive, blue-green, A/B, premium,
  premium-canary, mirror and rollback HTTPRoutes, validated, with the commands that operate them.
- :func:`review_paths` / :func:`review_objects` (``trafficlab review``): findings with field path,
  problem, effect on traffic and fix.
- :func:`review_command` (``trafficlab review-command``): a kubectl patch/apply applied to a copy
  of the lab's object, or exactly why kubectl would refuse it.

None of them changes the lab.
"""

from __future__ import annotations

from trafficlab.engineer.facts import LabFacts, baseline_facts, lab_facts, load_facts
from trafficlab.engineer.generate import (
    GENERATE_KINDS,
    Expectation,
    Generated,
    GenerateError,
    GenerateOptions,
    generate,
)
from trafficlab.engineer.review import (
    CODES,
    Finding,
    ReviewReport,
    review_objects,
    review_paths,
    review_route,
)
from trafficlab.engineer.review_command import CommandReview, review_command

__all__ = [
    "CODES",
    "GENERATE_KINDS",
    "CommandReview",
    "Expectation",
    "Finding",
    "GenerateError",
    "GenerateOptions",
    "Generated",
    "LabFacts",
    "ReviewReport",
    "baseline_facts",
    "generate",
    "lab_facts",
    "load_facts",
    "review_command",
    "review_objects",
    "review_paths",
    "review_route",
]
