"""A spill subdirectory is one identity's: exporters that send as other tenants (a session's headers or auth, mTLS
client certificates, gRPC channel options) never replay each other's requests; one whose credentials spanbatch cannot
read (a gRPC credentials object, a session's auth callable) does not spill unless given a ``spill_key``; and the plain
cases keep the names earlier releases gave them, so that spills written before an upgrade are replayed after it."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
import spanbatch
from requests.auth import HTTPBasicAuth
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcSpanExporter
from spanbatch.testing import OTLPReceiver

from tests.helpers import end_spans, provider_with, wait_until
from tests.helpers.spill import spill_files

pytestmark = pytest.mark.timeout(90)

HTTPS = "https://127.0.0.1:4318/v1/traces"


def _session(how: str, tenant: str) -> requests.Session:
    session = requests.Session()
    if how == "session headers":
        session.headers["Authorization"] = f"Bearer {tenant}"
    elif how == "session auth tuple":
        session.auth = ("user", tenant)
    else:
        session.auth = HTTPBasicAuth("user", tenant)
    return session


@pytest.mark.parametrize("how", ["session headers", "session auth tuple", "session basic auth"])
def test_http_exporters_whose_sessions_send_as_other_tenants_never_replay_each_others_requests(
    how: str, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("down")

        def exporter(tenant: str) -> OTLPSpanExporter:
            return OTLPSpanExporter(endpoint=rx.endpoint, session=_session(how, tenant), timeout=1, spill_dir=tmp_path)

        processor = spanbatch.BatchSpanProcessor(exporter("A"))
        ids = end_spans(provider_with(processor), 10, "tenant-a")
        processor.shutdown()
        assert processor.stats().spilled == 10
        rx.set_behaviour("ok")
        other = shutdown_later(spanbatch.BatchSpanProcessor(exporter("B")))
        # Tenant B's exporter replays what its own directory holds at once: nothing of tenant A's.
        assert not rx.wait_for_spans(1, timeout=3)
        assert other.span_exporter.spill_counts().replayed == 0
        own = shutdown_later(spanbatch.BatchSpanProcessor(exporter("A")))
        assert rx.wait_for_spans(10, timeout=30)
        assert rx.span_ids() == ids
        assert wait_until(lambda: own.span_exporter.spill_counts().replayed == 10, 10)


def _directory(exporter: Any) -> str:
    name: str = exporter._spiller.store.directory.name
    exporter.shutdown()
    return name


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], tuple[Path, Path]]:
    """Makes a self-signed client certificate for a subject (and its key) at a path of the test's choosing."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make certificates with")
    base = tmp_path_factory.mktemp("certs")

    def make(name: str, subject: str) -> tuple[Path, Path]:
        certificate, key = base / f"{name}.crt", base / f"{name}.key"
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                f"/CN={subject}",
                "-keyout",
                str(key),
                "-out",
                str(certificate),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return certificate, key

    return make


def test_https_exporters_with_other_client_certificates_spill_apart(
    tmp_path: Path, certificates: Callable[[str, str], tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def mtls(certificate: Path, key: Path) -> str:
        files = {"client_certificate_file": str(certificate), "client_key_file": str(key)}
        return _directory(OTLPSpanExporter(endpoint=HTTPS, spill_dir=tmp_path, **files))

    a_cert, a_key = certificates("a", "tenant-a")
    b_cert, b_key = certificates("b", "tenant-b")
    plain = _directory(OTLPSpanExporter(endpoint=HTTPS, spill_dir=tmp_path))
    tenant_a = mtls(a_cert, a_key)
    assert len({plain, tenant_a, mtls(b_cert, b_key)}) == 3
    # As the stock exporter reads them, from its variables too.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", str(a_cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", str(a_key))
    assert _directory(OTLPSpanExporter(endpoint=HTTPS, spill_dir=tmp_path)) == tenant_a
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY")
    # A certificate renewed in place (new key, same subject) is the same tenant: its spill is replayed after the
    # rotation. Another tenant's certificate at the same path (another container's) is not.
    certificates("a", "tenant-a")
    assert mtls(a_cert, a_key) == tenant_a
    certificates("a", "tenant-b")
    assert mtls(a_cert, a_key) != tenant_a
    # Another trust anchor for the server is another way of sending.
    assert _directory(OTLPSpanExporter(endpoint=HTTPS, certificate_file=str(b_cert), spill_dir=tmp_path)) != plain


def test_grpc_exporters_with_other_channel_options_or_certificate_files_spill_apart(
    tmp_path: Path, certificates: Callable[[str, str], tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def insecure(options: Any = None) -> str:
        return _directory(
            GrpcSpanExporter(endpoint="127.0.0.1:4317", insecure=True, channel_options=options, spill_dir=tmp_path)
        )

    plain = insecure()
    tenant_a = insecure((("grpc.default_authority", "tenant-a.example"),))
    tenant_b = insecure((("grpc.default_authority", "tenant-b.example"),))
    assert len({plain, tenant_a, tenant_b}) == 3
    # Which client sends, not whose the request is: a new release must find its directory.
    assert insecure((("grpc.primary_user_agent", "app/2"),)) == plain

    def secure() -> str:
        return _directory(GrpcSpanExporter(endpoint="https://127.0.0.1:4317", spill_dir=tmp_path))

    default = secure()
    names = set()
    for tenant in ("tenant-a", "tenant-b"):
        certificate, key = certificates(tenant, tenant)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(certificate))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", str(certificate))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", str(key))
        names.add(secure())
    assert default not in names
    assert len(names) == 2


@pytest.fixture
def spanbatch_warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="spanbatch")
    return caplog


def _opaque_exporters() -> dict[str, Callable[..., Any]]:
    def call_credentials(token: str) -> grpc.ChannelCredentials:
        return grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(), grpc.access_token_call_credentials(token)
        )

    def token_auth(request: Any) -> Any:
        request.headers["Authorization"] = "Bearer from-a-vault"
        return request

    def auth_callable(**kwargs: Any) -> Any:
        session = requests.Session()
        session.auth = token_auth
        return OTLPSpanExporter(endpoint=HTTPS, session=session, **kwargs)

    def adapter(**kwargs: Any) -> Any:
        class ClientCertificateAdapter(requests.adapters.HTTPAdapter):
            pass  # such adapters load a certificate from memory (PKCS#12) that no setting names

        session = requests.Session()
        session.mount("https://", ClientCertificateAdapter())
        return OTLPSpanExporter(endpoint=HTTPS, session=session, **kwargs)

    def grpc_credentials(**kwargs: Any) -> Any:
        return GrpcSpanExporter(endpoint="https://127.0.0.1:4317", credentials=call_credentials("A"), **kwargs)

    return {"session auth callable": auth_callable, "session adapter": adapter, "grpc credentials": grpc_credentials}


@pytest.mark.parametrize("how", list(_opaque_exporters()))
def test_an_exporter_whose_credentials_cannot_be_read_spills_only_under_a_key_it_is_given(
    how: str, tmp_path: Path, spanbatch_warnings: pytest.LogCaptureFixture
) -> None:
    make = _opaque_exporters()[how]
    exporter = make(spill_dir=tmp_path)
    assert exporter._spiller is None
    assert exporter.spill_counts() is None
    exporter.shutdown()
    told = [record.getMessage() for record in spanbatch_warnings.records if "spill_key" in record.getMessage()]
    assert len(told) == 1, told
    spanbatch_warnings.clear()
    keyed = {_directory(make(spill_dir=tmp_path, spill_key=tenant)) for tenant in ("tenant-a", "tenant-b")}
    assert len(keyed) == 2
    assert not [record for record in spanbatch_warnings.records if "spill_key" in record.getMessage()]
    # Without a spill directory there is nothing to refuse, nor to tell.
    make().shutdown()
    assert not spanbatch_warnings.records


def test_an_exporter_refused_a_spill_fails_its_exports_as_without_one(
    tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("down")
        session = requests.Session()
        session.auth = lambda request: request
        exporter = OTLPSpanExporter(endpoint=rx.endpoint, session=session, timeout=1, spill_dir=tmp_path)
        processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter))
        end_spans(provider_with(processor), 10)
        processor.force_flush(30_000)
        stats = processor.stats()
    assert (stats.spilled, stats.dropped["export_failed"]) == (0, 10)
    assert not spill_files(tmp_path)


# The names releases before this one gave, for exporters that key nothing beyond their headers: files spilled under
# them before an upgrade are replayed after it.
EARLIER_NAMES = {
    "http plain": "http-008450eb0c58d143",
    "http headers": "http-fb77ceb74ede7229",
    "http plain session": "http-008450eb0c58d143",
    "http with certificate files unused": "http-008450eb0c58d143",
    "https plain": "http-81d77338da61ae60",
    "grpc plain": "grpc-4a2a739cfbf02fb1",
    "grpc tls by default": "grpc-4a2a739cfbf02fb1",
    "grpc credentials unused": "grpc-4a2a739cfbf02fb1",
}


def _plain_exporters(root: Path) -> dict[str, Any]:
    http = "http://127.0.0.1:4318/v1/traces"
    unused = {"certificate_file": "/none/ca.pem", "client_certificate_file": "/none/c.pem", "client_key_file": "/k"}
    return {
        "http plain": lambda: OTLPSpanExporter(endpoint=http, spill_dir=root),
        "http headers": lambda: OTLPSpanExporter(endpoint=http, headers={"authorization": "k"}, spill_dir=root),
        "http plain session": lambda: OTLPSpanExporter(endpoint=http, session=requests.Session(), spill_dir=root),
        "http with certificate files unused": lambda: OTLPSpanExporter(endpoint=http, spill_dir=root, **unused),
        "https plain": lambda: OTLPSpanExporter(endpoint=HTTPS, spill_dir=root),
        "grpc plain": lambda: GrpcSpanExporter(endpoint="127.0.0.1:4317", insecure=True, spill_dir=root),
        "grpc tls by default": lambda: GrpcSpanExporter(endpoint="https://127.0.0.1:4317", spill_dir=root),
        "grpc credentials unused": lambda: GrpcSpanExporter(
            endpoint="127.0.0.1:4317", insecure=True, credentials=grpc.ssl_channel_credentials(), spill_dir=root
        ),
    }


@pytest.mark.parametrize("case", list(EARLIER_NAMES))
def test_exporters_keying_nothing_more_keep_the_names_of_earlier_releases(case: str, tmp_path: Path) -> None:
    assert _directory(_plain_exporters(tmp_path)[case]()) == EARLIER_NAMES[case]


def test_a_session_is_only_looked_at_with_a_spill_directory_and_any_requests_takes_is_taken(tmp_path: Path) -> None:
    # requests sends bytes and str query keys alike (?tenant=a&key=v); sorted together they raised TypeError in the
    # constructor, with a spill directory or not (revZ), where the stock exporter is made.
    session = requests.Session()
    session.params = {"tenant": "a", b"key": b"v"}
    assert OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", session=session)._spiller is None
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", session=session, spill_dir=tmp_path)
    assert exporter._spiller is not None
    exporter.shutdown()


@pytest.mark.parametrize("how", list(_opaque_exporters()))
def test_the_key_may_come_from_the_environment_as_a_zero_code_set_up_gives_it(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # opentelemetry-instrument makes the exporters: SPANBATCH_SPILL_KEY stands for the argument it cannot pass, and
    # an argument given wins over it.
    make = _opaque_exporters()[how]
    monkeypatch.setenv("SPANBATCH_SPILL_KEY", "tenant-a")
    from_variable = make(spill_dir=tmp_path)
    assert from_variable._spiller is not None
    name = _directory(from_variable)
    assert name == _directory(make(spill_dir=tmp_path, spill_key="tenant-a"))
    assert name != _directory(make(spill_dir=tmp_path, spill_key="tenant-b"))
