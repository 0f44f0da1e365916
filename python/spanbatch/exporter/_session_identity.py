"""What an OTLP/HTTP exporter's ``requests`` session sends its requests as (see ``_spill_identity``); a module of its
own, as the gRPC exporters may be installed without ``requests``."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import requests
from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth, HTTPDigestAuth, HTTPProxyAuth
from requests.utils import default_headers

from spanbatch.exporter._spill_identity import Identity, tls_files

# Auth types of requests' own whose whole state is the user name and password.
_PLAIN_AUTH = (HTTPBasicAuth, HTTPDigestAuth, HTTPProxyAuth)


def http_identity(transport: object, endpoint: str, headers: Mapping[str, str]) -> Identity:
    """What a stock HTTP exporter's transport adds to its ``headers`` (before spanbatch may swap it for Rust's)."""
    if type(transport) is not RequestsHTTPTransport:
        return Identity(list(headers.items()), unreadable=f"its transport ({type(transport).__qualname__})")
    session: requests.Session = transport._session
    identity = Identity(_session_headers(session, headers))
    if session.auth is not None:
        auth = session.auth
        if isinstance(auth, tuple) and len(auth) == 2:  # requests' (user, password)
            identity.keyed["auth"] = ["basic", *auth]
        elif type(auth) in _PLAIN_AUTH:
            identity.keyed["auth"] = [type(auth).__name__, auth.username, auth.password]  # type: ignore[attr-defined]
        else:
            identity.unreadable = f"its session's auth ({type(auth).__qualname__})"
    adapters = [type(adapter).__qualname__ for adapter in session.adapters.values() if type(adapter) is not HTTPAdapter]
    if adapters:
        identity.unreadable = f"its session's adapter ({', '.join(adapters)})"
    for name in ("params", "proxies"):
        if getattr(session, name):
            # By repr: requests takes bytes and str keys alike, which do not sort together.
            identity.keyed[name] = sorted(repr(item) for item in dict(getattr(session, name)).items())
    cookies = sorted((cookie.domain, cookie.path, cookie.name, cookie.value) for cookie in session.cookies)
    if cookies:
        identity.keyed["cookies"] = cookies
    if urlsplit(endpoint).scheme.lower() == "https":  # TLS settings mean nothing to a plain-HTTP backend
        if session.verify is not True:
            identity.keyed["verify"] = session.verify
        cert = session.cert
        if cert:
            certificate, key = (cert, None) if isinstance(cert, str) else cert
            identity.keyed.update(tls_files(None, certificate, key))
    return identity


def _session_headers(session: requests.Session, headers: Mapping[str, str]) -> list[tuple[str, object]]:
    """The headers requests sends: the session's, under the exporter's own, but those every session starts with."""
    defaults = {name.lower(): value for name, value in default_headers().items()}
    sent = {
        name.lower(): (name, value)
        for name, value in session.headers.items()
        if value is not None and defaults.get(name.lower()) != value
    }
    sent.update((name.lower(), (name, value)) for name, value in headers.items())
    return list(sent.values())
