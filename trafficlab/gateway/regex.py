"""Gateway API regular expressions, evaluated the way Envoy evaluates them: with RE2.

Envoy compiles every ``RegularExpression`` match (path, header, query) with Google's RE2
(``envoy.regex_engines.google_re2``) and refuses a pattern RE2 cannot parse or whose compiled
program is larger than its limit. TrafficLab uses the same engine (``google-re2`` from PyPI)
wherever it decides what a pattern matches (the translator's checks, the request evaluator,
graders and the route reviewer), so that:

* matching agrees with the gateway (RE2 has no backreferences or lookaround, and a match is
  always over the whole value, as Envoy's ``safe_regex`` matchers are), and
* no pattern can make TrafficLab hang: RE2 runs in time linear in the input, so a
  "catastrophic" pattern such as ``beta|((((((.*)*)*)*)*)*)*!`` costs microseconds.

>>> full_match("/tasks/[0-9]+", "/tasks/42"), full_match("/tasks/[0-9]+", "/tasks/42/x")
(True, False)
>>> regex_problem("/(?<=x)tasks")
'invalid perl operator: (?<='
"""

from __future__ import annotations

import functools

import re2

__all__ = ["ENVOY_MAX_PROGRAM_SIZE", "RegexError", "compile_regex", "full_match", "regex_problem"]

# Envoy refuses a regex whose RE2 program is larger than this (runtime key
# ``re2.max_program_size.error_level``, default 100), unless its config raises the limit.
ENVOY_MAX_PROGRAM_SIZE = 100

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every parse error to stderr


class RegexError(ValueError):
    """A pattern Envoy would refuse; ``problem`` says why in RE2's words."""

    def __init__(self, pattern: str, problem: str) -> None:
        super().__init__(f"invalid regular expression {pattern!r}: {problem}")
        self.pattern = pattern
        self.problem = problem


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> re2._Regexp:
    """Compile ``pattern`` as Envoy would; raises :class:`RegexError` when Envoy would refuse it."""
    try:
        compiled = re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        raise RegexError(pattern, _reason(exc)) from None
    if compiled.programsize > ENVOY_MAX_PROGRAM_SIZE:
        raise RegexError(pattern, f"its RE2 program size {compiled.programsize} exceeds Envoy's "
                                  f"limit of {ENVOY_MAX_PROGRAM_SIZE}; simplify the pattern")
    return compiled


def regex_problem(pattern: str) -> str | None:
    """Why Envoy would refuse ``pattern``, or None when it accepts it."""
    try:
        compile_regex(pattern)
    except RegexError as exc:
        return exc.problem
    return None


def full_match(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches all of ``text``, as Envoy's ``safe_regex`` matchers test it.

    A pattern Envoy would refuse matches nothing (the translator never lets one reach Envoy).
    """
    try:
        compiled = compile_regex(pattern)
    except RegexError:
        return False
    return compiled.fullmatch(text) is not None


def _reason(exc: Exception) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return str(text)
