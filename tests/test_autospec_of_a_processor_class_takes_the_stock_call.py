"""``mock.create_autospec(BatchSpanProcessor, instance=True)`` gives a mock whose ``on_end(span)`` is accepted, as the
stock class's is (likewise ``on_emit`` of the log processor): tests of applications mock processors this way. (A
native descriptor for ``on_end`` on the class broke it: mock keeps ``self`` for an attribute that is no function.)"""

from __future__ import annotations

from unittest import mock

import pytest
import spanbatch
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as StockLogs
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockSpans

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("ours", "stock", "method"),
    [
        (spanbatch.BatchSpanProcessor, StockSpans, "on_end"),
        (spanbatch.BatchLogRecordProcessor, StockLogs, "on_emit"),
    ],
)
def test_an_autospecced_processor_takes_one_argument_as_the_stock_one(ours: type, stock: type, method: str) -> None:
    getattr(mock.create_autospec(stock, instance=True), method)(object())  # the stock class: fine
    mocked = mock.create_autospec(ours, instance=True)
    getattr(mocked, method)(object())
    getattr(mocked, method).assert_called_once()
