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

What it checks: that gongkai finds the channel through its entry point (install your
package, ``pip install -e .``, before running it) under a valid name no other plugin
offers; that Config rejects unknown keys, is frozen and masks secrets; that ``render``
is pure; that receipts are well formed (a known status, JSON data, no secret in them,
an artifact that exists); that a delivered item can be updated and withdrawn; that the
declared ``guarantee`` holds (``idempotency-key``: the same key on a resend; ``upsert``:
a resend overwrites; ``lookup``: ``reconcile`` finds what was sent and returns None for
what was not); for HTTP channels, that 429 and 5xx are transient, other 4xx permanent
and every ``requests`` exception classified; for offline channels, that a delivery
ends ``awaiting-confirmation`` with its artifact on disk. See docs/writing-a-channel.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
import responses
from pydantic import BaseModel, SecretStr, ValidationError

from gongkai.plugins.manager import (
    CHANNEL_NAME,
    collect_channels,
    contract_problem,
    get_plugin_manager,
)

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
from .ledger.base import AttemptRecord

_ANY_URL = re.compile(r".*")
_METHODS = (responses.GET, responses.POST, responses.PUT, responses.PATCH, responses.DELETE)
_RECEIPT_STATUSES = ("delivered", "publishing", "awaiting-confirmation", "withdrawn")
#: What a withdrawal may end in: down, or waiting for a person to take it down.
_WITHDRAWN_STATUSES = ("withdrawn", "awaiting-confirmation")

# What every `requests` exception must become. A ConnectionError is ambiguous in
# general; with "refused" in it the request surely never left.
REQUESTS_EXCEPTIONS: tuple[tuple[Exception, type[DeliveryError]], ...] = (
    (requests.ConnectTimeout(), TransientError),
    (requests.ReadTimeout(), OutcomeUnknown),
    (requests.ConnectionError("Connection refused"), TransientError),
    (requests.exceptions.ChunkedEncodingError(), OutcomeUnknown),
    (requests.exceptions.SSLError(), TransientError),
    (requests.exceptions.TooManyRedirects(), TransientError),
    # Any classification will do for these, as long as no `requests` exception leaks.
    (requests.exceptions.ContentDecodingError(), DeliveryError),
    (requests.RequestException(), DeliveryError),
)


class ChannelContract:
    """Standard tests every channel should pass. Set ``channel_class`` and ``config``;
    set ``http = True`` for channels that talk HTTP, and ``success_json`` to the body a
    successful remote answers with."""

    channel_class: ClassVar[type[Channel]]
    config: ClassVar[dict[str, Any]] = {}
    http: ClassVar[bool] = False
    success_json: ClassVar[dict[str, Any]] = {"id": "remote-1", "errcode": 0}
    #: False for a channel class that only your tests define: it has no entry point,
    #: so the discovery check is skipped (its name must still be free).
    discoverable: ClassVar[bool] = True
    #: Check ``reconcile`` (finds what was sent, None for what was not): always for a
    #: ``lookup`` channel; set True to check it for another guarantee too.
    check_reconcile: ClassVar[bool] = False
    #: The header an ``idempotency-key`` channel carries its key in.
    idempotency_header: ClassVar[str] = "Idempotency-Key"

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

    # --- helpers for subclasses ------------------------------------------------------

    def act(self, call: Any) -> tuple[Any, list[requests.PreparedRequest]]:
        """Run ``call()``; for an HTTP channel every URL answers ``success_json``.
        Returns what it returned and the HTTP requests it made."""
        if not self.http:
            return call(), []
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self._mock_all(mock, json=self.success_json)
            result = call()
            return result, [c.request for c in mock.calls]

    def check_receipt(
        self, receipt: object, statuses: tuple[str, ...] = _RECEIPT_STATUSES
    ) -> Receipt:
        """A well-formed receipt: a known status, data the ledger can store as JSON, no
        secret of the config in it, and an artifact (a file or folder) that exists."""
        assert isinstance(receipt, Receipt), f"expected a Receipt, got {receipt!r}"
        assert receipt.status in statuses, f"receipt status {receipt.status!r}: want {statuses}"
        try:
            stored = json.dumps(receipt.model_dump(mode="json"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise AssertionError(
                f"receipt data must be JSON (the ledger stores it): {exc}"
            ) from None
        for secret in _secrets(self.channel_class.Config.model_validate(self.config)):
            assert secret not in stored, "a secret of the config is in the receipt"
        if receipt.artifact is not None:
            assert Path(receipt.artifact).exists(), f"artifact {receipt.artifact} is missing"
        return receipt

    def remote_holds(self, mock: responses.RequestsMock, held: PreparedItem) -> bool:
        """For an HTTP channel whose ``reconcile`` is checked: register on ``mock`` what
        the remote answers to the look-ups ``reconcile`` makes while it holds the edition
        ``held`` (and nothing else), and return True. The default returns False: the
        check is skipped."""
        return False

    def next_edition(self, item: PreparedItem) -> PreparedItem:
        """The item's next edition, with a corrected body."""
        body = item.body + "\n\n（更正：办理时限为十五个工作日。）"
        digest = hashlib.sha256(f"{item.content_hash}:{body}".encode()).hexdigest()
        return item.model_copy(
            update={"edition": item.edition + 1, "body": body, "content_hash": digest}
        )

    # --- the contract -----------------------------------------------------------------

    def test_class_attributes(self) -> None:
        assert contract_problem(self.channel_class) is None

    def test_name_is_valid(self) -> None:
        name = self.channel_class.name
        assert CHANNEL_NAME.match(name), (
            f"channel name {name!r}: lowercase letters, digits and _, starting with a letter, "
            "at most 32 characters (it names the [channels.<name>] table)"
        )

    def test_found_through_its_entry_point_under_a_free_name(self) -> None:
        found, problems = _installed_channels()
        name = self.channel_class.name
        info = found.get(name)
        if not self.discoverable:
            assert info is None, f"channel name '{name}' is taken by {info.plugin}; pick another"
            return
        assert info is not None, (
            f"gongkai does not find channel '{name}'. Declare an entry point in your "
            f'pyproject.toml ([project.entry-points.gongkai] {name} = "your_package.module", '
            "the module having a gongkai_register_channels hook that returns the class) and "
            "install the package (pip install -e .)"
            + "".join(f"\n  plugin problem: {p}" for p in problems)
        )
        assert info.cls is self.channel_class, (
            f"channel name '{name}' is taken by {info.cls.__module__}.{info.cls.__qualname__} "
            f"({info.plugin}), not this class; pick another name"
        )

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
        self.check_receipt(receipt, ("delivered", "publishing", "awaiting-confirmation"))

    def test_offline_delivery_awaits_confirmation(
        self, channel: Channel, item: PreparedItem
    ) -> None:
        if self.channel_class.mode != "offline":
            pytest.skip("not an offline channel")
        receipt, _ = self.act(lambda: channel.deliver(item, channel.render(item), None))
        self.check_receipt(receipt, ("awaiting-confirmation",))
        assert receipt.artifact, "an offline receipt names its artifact (what a person posts)"

    def test_update_and_withdraw_a_delivered_item(
        self, channel: Channel, item: PreparedItem
    ) -> None:
        first, _ = self.act(lambda: channel.deliver(item, channel.render(item), None))
        self.check_receipt(first)
        second_edition = self.next_edition(item)
        rendition = channel.render(second_edition)
        second, _ = self.act(lambda: channel.deliver(second_edition, rendition, first))
        self.check_receipt(second, ("delivered", "publishing", "awaiting-confirmation"))
        if not self.channel_class.supports("withdraw"):
            pytest.skip("the channel has no withdraw: take-downs are done by hand")
        gone, _ = self.act(lambda: channel.withdraw(second_edition, second, "信息有误"))
        self.check_receipt(gone, _WITHDRAWN_STATUSES)

    def test_guarantee_is_honoured(self, channel: Channel, item: PreparedItem) -> None:
        """A resend of one edition (after an unknown outcome core sends it again, with
        no receipt) is as safe as the guarantee claims."""
        guarantee = self.channel_class.guarantee
        if guarantee == "lookup":
            assert self.channel_class.supports("reconcile"), (
                "a lookup channel must implement reconcile"
            )
            pytest.skip("checked by test_reconcile_finds_only_what_was_sent")
        if guarantee not in ("idempotency-key", "upsert"):
            pytest.skip(f"nothing to check for guarantee {guarantee!r}")
        rendition = channel.render(item)
        before = _files(channel.context.state_dir)
        first, sent_first = self.act(lambda: channel.deliver(item, rendition, None))
        once = _files(channel.context.state_dir)
        again, sent_again = self.act(lambda: channel.deliver(item, rendition, None))
        assert (again.external_id, again.artifact) == (first.external_id, first.artifact), (
            "a resend of the same edition must land where the first one did"
        )
        assert _files(channel.context.state_dir) == once, (
            "a resend wrote new files instead of overwriting the first delivery's "
            f"(had {sorted(once - before)})"
        )
        if guarantee == "idempotency-key" and self.http:
            keys_first = _header_values(sent_first, self.idempotency_header)
            keys_again = _header_values(sent_again, self.idempotency_header)
            assert keys_first, f"no request carried an {self.idempotency_header} header"
            assert keys_first == keys_again, (
                f"a resend must carry the same {self.idempotency_header}: "
                f"{keys_first} then {keys_again}"
            )
        if guarantee == "upsert" and self.http:
            assert _targets(sent_first) == _targets(sent_again), (
                "an upsert resend must address the same resources as the first delivery"
            )

    def test_reconcile_finds_only_what_was_sent(self, channel: Channel, item: PreparedItem) -> None:
        if not (self.check_reconcile or self.channel_class.guarantee == "lookup"):
            pytest.skip("not a lookup channel (set check_reconcile = True to check it)")
        assert self.channel_class.supports("reconcile"), "this channel has no reconcile"
        receipt: Receipt | None = None
        if self.http:

            def look(target: PreparedItem) -> Receipt | None:
                with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
                    if not self.remote_holds(mock, item):
                        pytest.skip("HTTP: define remote_holds() to say what the remote answers")
                    return channel.reconcile(target, _attempt(channel, target))

        else:
            receipt, _ = self.act(lambda: channel.deliver(item, channel.render(item), None))

            def look(target: PreparedItem) -> Receipt | None:
                return channel.reconcile(target, _attempt(channel, target))

        found = look(item)
        assert found is not None, "reconcile did not find the edition that was delivered"
        self.check_receipt(found)
        if receipt is not None:
            assert found.external_id == receipt.external_id
        never = item.model_copy(update={"id": "contract-never-sent", "content_hash": "e" * 64})
        assert look(never) is None, "reconcile must return None for an item that was never sent"
        assert look(self.next_edition(item)) is None, (
            "reconcile found edition 2 where only edition 1 was sent: compare the edition "
            "or content hash, not only the item id"
        )

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

    @pytest.mark.parametrize("status", [400, 404, 413, 422])
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


@functools.cache
def _installed_channels() -> tuple[dict[str, Any], tuple[str, ...]]:
    """The channels gongkai finds (built in and through entry points) and the plugin
    problems met on the way; once per test session."""
    pm = get_plugin_manager()
    found = collect_channels(pm)
    return found, tuple(str(p) for p in pm.problems)


def _secrets(value: Any) -> Iterator[str]:
    """Every secret value in a config (nested dicts and lists too)."""
    if isinstance(value, SecretStr):
        if value.get_secret_value():
            yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for _, field in value:
            yield from _secrets(field)
    elif isinstance(value, dict):
        for field in value.values():
            yield from _secrets(field)
    elif isinstance(value, list | tuple):
        for field in value:
            yield from _secrets(field)


def _files(root: Path) -> frozenset[str]:
    return frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _header_values(sent: list[requests.PreparedRequest], header: str) -> list[str]:
    return [r.headers[header] for r in sent if header in r.headers]


def _targets(sent: list[requests.PreparedRequest]) -> list[tuple[str, str]]:
    return [(str(r.method), str(r.url)) for r in sent]


def _attempt(channel: Channel, item: PreparedItem) -> AttemptRecord:
    """The logged delivery of this edition whose answer never came."""
    now = channel.context.clock()
    return AttemptRecord(
        item_id=item.id,
        channel=channel.context.name,
        edition=item.edition,
        action="deliver",
        started_at=now,
        finished_at=now,
        outcome="unknown",
    )


__all__ = ["REQUESTS_EXCEPTIONS", "ChannelContract"]
