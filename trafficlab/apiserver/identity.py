"""The API server's TLS identity, made without loading ``cryptography`` into the daemon.

``cryptography`` carries its own OpenSSL: imported once to make the certificates, it stayed
mapped for the daemon's whole life (12 MiB of the lab's RSS budget). The daemon therefore forks
a child that makes them (``certs.make_certs``) and exits, and then only reads the files, as
Python's own ``ssl`` module can. A process that already runs threads (a test) makes them
itself: forking a threaded process is unsafe.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from trafficlab._errors import BackendError

__all__ = ["ApiCerts", "make_identity"]


@dataclass(frozen=True)
class ApiCerts:
    """Where the certificates and keys were written, and the CA certificate's PEM."""

    ca_pem: bytes
    cert_path: Path
    key_path: Path


def make_identity(folder: Path) -> ApiCerts:
    """A fresh CA and server certificate in ``folder`` (keys mode 0600), made in a child."""
    if threading.active_count() > 1 or not hasattr(os, "fork"):
        from trafficlab.apiserver.certs import make_certs

        make_certs(folder)
        return _read(folder)
    pid = os.fork()
    if pid == 0:  # the child: make them, and never return into the daemon's code
        code = 1
        try:
            from trafficlab.apiserver.certs import make_certs

            make_certs(folder)
            code = 0
        except BaseException:
            traceback.print_exc(file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise BackendError(f"the lab could not make its TLS certificates in {folder} (see the "
                           "daemon's log); check the lab home's permissions and disk space")
    return _read(folder)


def _read(folder: Path) -> ApiCerts:
    return ApiCerts((folder / "ca.crt").read_bytes(), folder / "apiserver.crt",
                    folder / "apiserver.key")
