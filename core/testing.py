"""The channel contract suite, for channel authors.

Subclass :class:`ChannelContract` in your own tests and pytest runs the standard checks
against your channel::

    from gongkai.testing import ChannelContract
    from my_package.led import LedScreenChannel

    class TestLedScreen(ChannelContract):
        channel_class = LedScreenChannel
        config = {"url": "https://led.example.test/api", "token": "t0ken-for-tests"}
        http = True            # the channel talks HTTP through requests

It needs ``pytest`` and ``responses`` (``pip install gongkai[test]``). HTTP checks mock
every URL with ``responses``, so the suite never reaches a network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
import responses
from pydantic import SecretStr, ValidationError

from gongkai.plugins.manager import contract_problem

from .channel import (
    Channel,
    ChannelContext,
    DeliveryProgress,
    PreparedItem,
    Receipt,
    Rendition,
    bind_progress,
    unbind_progress,
)
from .errors import AuthError, DeliveryError, OutcomeUnknown, PermanentError, TransientError

_ANY_URL = re.compile(r".*")
_METHODS = (responses.GET, responses.POST, responses.PUT, responses.PATCH, responses.DELETE)

# What every `requests` exception must become. A ConnectionError is ambiguous in
# general; with "refused" in it the request surely never left.
REQUESTS_EXCEPTIONS: tuple[tuple[Exception, type[DeliveryError]], ...] = (
    (requests.ConnectTimeout(), TransientError),
    (requests.ReadTimeout(), OutcomeUnknown),
    (requests.ConnectionError("Connection refused"), TransientError),
    (requests.exceptions.ChunkedEncodingError(), OutcomeUnknown),
    (requests.exceptions.SSLError(), TransientError),
    (requests.exceptions.TooManyRedirects(), TransientError),
)


class ChannelContract:
    """Standard tests every channel should pass. Set ``channel_class`` and ``config``;
    set ``http = True`` for channels that talk HTTP, and ``success_json`` to the body a
    successful remote answers with."""

    channel_class: ClassVar[type[Channel]]
    config: ClassVar[dict[str, Any]] = {}
    http: ClassVar[bool] = False
    success_json: ClassVar[dict[str, Any]] = {"id": "remote-1", "errcode": 0}

    # --- fixtures authors may override --------------------------------------------

    @pytest.fixture
    def channel(self, tmp_path: Path) -> Iterator[Channel]:
        """The channel under test, inside a delivery context as core provides one, so
        ``checkpoint()`` and ``resumed()`` work as they do in a real run."""
        options = self.channel_class.Config.model_validate(self.config)
        context = ChannelContext(
            name=self.channel_class.name,
            state_dir=tmp_path,
            clock=lambda: datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
            connect_timeout=1,
            read_timeout=1,
        )
        token = bind_progress(DeliveryProgress())
        try:
            yield self.channel_class(options, context)
        finally:
            unbind_progress(token)

    @pytest.fixture
    def item(self) -> PreparedItem:
        return PreparedItem(
            id="contract-001",
            catalog="housing.policy",
            title="金堂县公共租赁住房申请指南",
            body="申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。",
            publisher="金堂县房产管理局",
            formed_on=date(2026, 11, 20),
            index_number="11510121009087532X/2026-00001",
            edition=1,
            content_hash="0" * 64,
        )

    # --- the contract -----------------------------------------------------------------

    def test_class_attributes(self) -> None:
        assert contract_problem(self.channel_class) is None

    def test_config_rejects_unknown_keys(self) -> None:
        with pytest.raises(ValidationError):
            self.channel_class.Config.model_validate({**self.config, "no_such_key_xyz": 1})

    def test_config_is_frozen(self) -> None:
        options = self.channel_class.Config.model_validate(self.config)
        assert options.model_config.get("frozen"), "Config must be frozen"

    def test_secrets_are_masked(self) -> None:
        options = self.channel_class.Config.model_validate(self.config)
        for name, value in options:
            if isinstance(value, SecretStr):
                assert value.get_secret_value() not in repr(options), name
                assert value.get_secret_value() not in str(options.model_dump()), name

    def test_render_is_pure(self, channel: Channel, item: PreparedItem) -> None:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            first = channel.render(item)
            second = channel.render(item)
            assert len(mock.calls) == 0, "render must not make HTTP calls"
        assert isinstance(first, Rendition)
        assert first == second

    def _mock_all(self, mock: responses.RequestsMock, **kwargs: Any) -> None:
        for method in _METHODS:
            mock.add(method, _ANY_URL, **kwargs)

    def test_success_gives_a_receipt(self, channel: Channel, item: PreparedItem) -> None:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            if self.http:
                self._mock_all(mock, json=self.success_json)
            receipt = channel.deliver(item, channel.render(item), None)
        assert isinstance(receipt, Receipt)
        assert receipt.status in ("delivered", "publishing", "awaiting-confirmation")

    @pytest.mark.parametrize("status", [429, 500, 502, 503])
    def test_server_errors_are_transient(
        self, channel: Channel, item: PreparedItem, status: int
    ) -> None:
        if not self.http:
            pytest.skip("not an HTTP channel")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self._mock_all(mock, status=status, json={})
            with pytest.raises((TransientError, OutcomeUnknown)):
                channel.deliver(item, channel.render(item), None)

    @pytest.mark.parametrize("status", [400, 404, 422])
    def test_client_errors_are_permanent(
        self, channel: Channel, item: PreparedItem, status: int
    ) -> None:
        if not self.http:
            pytest.skip("not an HTTP channel")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self._mock_all(mock, status=status, json={})
            with pytest.raises(PermanentError):
                channel.deliver(item, channel.render(item), None)

    def test_refused_credentials_are_auth_errors(
        self, channel: Channel, item: PreparedItem
    ) -> None:
        if not self.http:
            pytest.skip("not an HTTP channel")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self._mock_all(mock, status=401, json={})
            with pytest.raises((AuthError, PermanentError)):
                channel.deliver(item, channel.render(item), None)

    @pytest.mark.parametrize(
        ("exc", "expected"),
        REQUESTS_EXCEPTIONS,
        ids=[type(e).__name__ for e, _ in REQUESTS_EXCEPTIONS],
    )
    def test_every_requests_exception_is_classified(
        self, channel: Channel, item: PreparedItem, exc: Exception, expected: type[DeliveryError]
    ) -> None:
        if not self.http:
            pytest.skip("not an HTTP channel")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self._mock_all(mock, body=exc)
            with pytest.raises(expected):
                channel.deliver(item, channel.render(item), None)


__all__ = ["REQUESTS_EXCEPTIONS", "ChannelContract"]
