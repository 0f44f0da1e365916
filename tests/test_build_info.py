"""What the native module says it was built as: the wheel under test carries the build's defaults."""

from __future__ import annotations

from spanbatch import _core


def fields() -> dict[str, str]:
    return dict(field.split("=", 1) for field in _core.build_info.split())


def test_build_info_names_profile_reference_pool_and_platform() -> None:
    assert set(fields()) == {"profile", "refpool", "arch", "os"}
    assert fields()["profile"] == _core.build_profile


def test_the_module_is_built_without_pyo3s_reference_pool() -> None:
    # .cargo/config.toml compiles the pool out, so no pymethod call (each on_end) takes its global
    # lock; a wheel built with RUSTFLAGS that replace that list shows "refpool=on" here.
    assert fields()["refpool"] == "off"
