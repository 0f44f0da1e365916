"""Zero-code set-up: ``OTEL_PYTHON_CONFIGURATOR=spanbatch opentelemetry-instrument python app.py``.

The SDK's own configurator builds the exporters named by ``OTEL_TRACES_EXPORTER`` exactly as
it always does; each is batched by spanbatch instead of the stock processor.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from opentelemetry.sdk._configuration import _initialize_components, _OTelSDKConfigurator

from spanbatch.processor import BatchSpanProcessor

logger = logging.getLogger("spanbatch")


class SpanbatchConfigurator(_OTelSDKConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        if "export_span_processor" in inspect.signature(_initialize_components).parameters:
            kwargs.setdefault("export_span_processor", BatchSpanProcessor)
        else:
            logger.warning(
                "This opentelemetry-sdk cannot take another span processor at set-up; spans use the stock one."
            )
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]
