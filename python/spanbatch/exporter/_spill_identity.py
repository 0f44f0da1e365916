"""Who an exporter's requests are sent as, beyond its endpoint, ``headers`` and compression: what keys its spill
subdirectory, so that a request is only ever replayed as it was first sent (revX: two tenants' exporters that differed
only in their session's credentials shared one, and one replayed the other's spans under its own).

Read once, at construction: a ``requests.Session``'s headers, auth, query parameters, cookies and proxies (see
``_session_identity``); the TLS files (the server's trust anchor, the client certificate and key, whichever way given);
gRPC channel options. What
cannot be read (a gRPC credentials object, a session's auth callable or custom adapter, a caller's transport) is named
in ``Identity.unreadable``: no spill for such an exporter unless its user gives a key for it (``spill_key``).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanbatch import _settings
from spanbatch._setting import read

# Channel options that say which client sends, not whose the request is (as User-Agent for headers).
_CLIENT_OPTIONS = frozenset({"grpc.primary_user_agent", "grpc.secondary_user_agent"})


@dataclass
class Identity:
    headers: list[tuple[str, object]] = field(default_factory=list)  # every header each request carries
    keyed: dict[str, object] = field(default_factory=dict)  # the rest that is read; empty: the plain case's name
    unreadable: str | None = None  # what says who requests are sent as but cannot be read


def tls_files(trusted: str | None, certificate: str | None, key: str | None) -> dict[str, object]:
    """The TLS files an exporter sends with: by path, and the client certificate also by whom it names."""
    keyed: dict[str, object] = {}
    if trusted:
        keyed["trusted"] = trusted
    if certificate:
        keyed["certificate"] = [certificate, _whom(certificate)]
    if key:
        keyed["key"] = key
    return keyed


def _whom(certificate: str) -> object:
    """Whom a client certificate file names (subject, issuer, alternative names): the same after it is renewed in
    place, not for another tenant's at the same path (another container's). Its content's hash if it cannot be
    decoded; None if it cannot be read (no connection is then made with it: nothing is delivered)."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)  # CPython's own PEM decoder
    try:
        decoded: dict[str, Any] = decode(certificate)  # type: ignore[misc]
        return [decoded.get(name) for name in ("subject", "issuer", "subjectAltName")]
    except Exception:  # not PEM, no decoder in this Python: by its bytes
        try:
            return hashlib.sha256(Path(certificate).read_bytes()).hexdigest()
        except OSError:
            return None


def grpc_identity(
    *, insecure: bool, credentials_given: bool, signal: str, channel_options: Iterable[tuple[str, Any]] | None
) -> Identity:
    """What a stock gRPC exporter's channel sends with, besides its metadata: its channel options, and on a secure
    channel its credentials, read only where the stock exporter made them from files (``signal``: TRACES, LOGS)."""
    identity = Identity()
    options = sorted((name, repr(value)) for name, value in channel_options or () if name not in _CLIENT_OPTIONS)
    if options:
        identity.keyed["channel_options"] = options
    if insecure:  # credentials are not used
        return identity
    if credentials_given:
        identity.unreadable = "its gRPC credentials"
        return identity
    # As the stock exporter looks for them: the signal's variables when its certificate is set, else the general ones.
    specific = _settings.GRPC_CREDENTIALS[f"{signal}_"]
    variables = specific if read(specific.certificate) is not None else _settings.GRPC_CREDENTIALS[""]
    if read(variables.provider):
        identity.unreadable = f"the gRPC credentials {variables.provider.variables[0]} names"
    else:
        trusted = read(variables.certificate)
        if trusted:
            identity.keyed.update(tls_files(trusted, read(variables.client_certificate), read(variables.client_key)))
    return identity
