"""Kubernetes name rules (k8s.io/apimachinery/pkg/util/validation), as small checks.

Each function returns an empty string when the value is fine, else the requirement
it breaks, phrased for the ``Invalid value: "X": <requirement>`` message.
"""

from __future__ import annotations

import re

__all__ = [
    "dns1035_label",
    "dns1123_label",
    "dns1123_subdomain",
    "env_var_name",
    "iana_svc_name",
    "label_value",
    "qualified_name",
]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL, re.ASCII)
_SUBDOMAIN_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*", re.ASCII)
_DNS1035_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?", re.ASCII)
_QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", re.ASCII)
_LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", re.ASCII)
_IANA_RE = re.compile(r"[-a-z0-9]+", re.ASCII)
_IANA_LETTER_RE = re.compile(r"[a-z]", re.ASCII)
_ENV_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*", re.ASCII)


def dns1123_label(value: str) -> str:
    """RFC 1123 label: Namespace names, container names, port names (max 63)."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _LABEL_RE.fullmatch(value):
        return ("must be a lowercase RFC 1123 label: lowercase letters, digits and '-', "
                "starting and ending with a letter or digit (e.g. 'task-api')")
    return ""


def dns1123_subdomain(value: str) -> str:
    """RFC 1123 subdomain: most object names (max 253)."""
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _SUBDOMAIN_RE.fullmatch(value):
        return ("must be a lowercase RFC 1123 subdomain: lowercase letters, digits, '-' and '.', "
                "starting and ending with a letter or digit (e.g. 'task-api' or 'example.com')")
    return ""


def dns1035_label(value: str) -> str:
    """RFC 1035 label: Service names (they become DNS names), max 63."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS1035_RE.fullmatch(value):
        return ("must be a DNS-1035 label: lowercase letters, digits and '-', starting with a "
                "letter and ending with a letter or digit (e.g. 'task-api-v1')")
    return ""


def qualified_name(value: str) -> str:
    """Label and annotation keys, finalizers: ``[prefix/]name``, prefix a DNS subdomain."""
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            return "prefix part must be non-empty"
        problem = dns1123_subdomain(prefix)
        if problem:
            return f"prefix part {problem}"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        return ("name part must consist of letters, digits, '-', '_' or '.', starting and ending "
                "with a letter or digit (e.g. 'app' or 'example.com/version')")
    return ""


def label_value(value: str) -> str:
    """Label values: empty, or up to 63 letters, digits, '-', '_', '.' (alphanumeric ends)."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _LABEL_VALUE_RE.fullmatch(value):
        return ("a label value must be empty or consist of letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit (e.g. 'v1')")
    return ""


def iana_svc_name(value: str) -> str:
    """Named ports (``containerPort`` names, string ``targetPort``): RFC 6335 service names."""
    if len(value) > 15:
        return "must be no more than 15 characters"
    if not _IANA_RE.fullmatch(value):
        return "must contain only lowercase letters, digits and '-' (e.g. 'http')"
    if value.startswith("-") or value.endswith("-"):
        return "must not begin or end with '-'"
    if "--" in value:
        return "must not contain consecutive '-'"
    if not _IANA_LETTER_RE.search(value):
        return "must contain at least one letter"
    return ""


def env_var_name(value: str) -> str:
    """Environment variable names: letters, digits, '_', '-', '.', not starting with a digit."""
    if not _ENV_RE.fullmatch(value):
        return ("a valid environment variable name must consist of letters, digits, '_', '-' "
                "or '.', and must not start with a digit (e.g. 'VERSION')")
    return ""
