"""The ``webhook`` channel: POST each edition as JSON to a URL you run.

For systems gongkai has no dedicated channel for (an intranet portal, another county
system that subscribes to the office's disclosures). Each request carries an
``Idempotency-Key``, one per action on one edition and the same on every retry of it:
``<item id>:<edition>:<first 16 hex of the content hash>`` for the delivery and
``<item id>:<edition>:withdraw`` for the withdrawal. So a receiver that honours it
never stores the same edition twice, core may resend after an unknown outcome, and a
withdrawal is never mistaken for a repeat of the delivery. Configure::

    [channels.webhook]
    url = "https://portal.example.gov.cn/api/gongkai"
    secret = { env = "GONGKAI_WEBHOOK_SECRET" }   # optional: whsec_…, signs every request
    token = { env = "GONGKAI_WEBHOOK_TOKEN" }     # optional, sent as a Bearer token
    headers = { "X-Api-Key" = { env = "OA_API_KEY" }, "X-Source" = "jintang" }

A header value is text, shown as it is (``gongkai channels``, ``render``), or a secret
named by environment variable, masked everywhere. A header whose name says it carries
a credential (Authorization, Cookie, …-Key, …-Token, …-Secret) must be a secret.

    [channels.oa_push]              # a second endpoint: its own delivery rows
    type = "webhook"
    url = "https://oa.example.gov.cn/hooks/gongkai"

With a ``secret``, requests are signed as the Standard Webhooks spec says
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``),
so a receiver verifies them with any Standard Webhooks library. ``webhook-id`` is the
same for every try of one edition: a receiver drops repeats by it.

The receiver answers 2xx with an optional JSON body ``{"id": …, "url": …}``; to
withdraw, gongkai sends ``DELETE <url>/<item id>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.config import is_unset_secret
from gongkai.http import classify_exception, new_session, raise_for_status
from gongkai.item import canonical_json
from gongkai.log import REDACTED
from gongkai.plugins.hookspecs import hookimpl

SECRET_PREFIX = "whsec_"
#: The spec asks for a key of 24 to 64 bytes; a shorter one is guessable.
MIN_KEY_BYTES = 24
#: Headers gongkai sets itself: a configured one would break signing or idempotency.
#: (Content-Type may be overridden, as before: some receivers want a plain one.)
OWN_HEADERS = frozenset({"idempotency-key", "webhook-id", "webhook-timestamp", "webhook-signature"})
#: Header names that carry a credential: their value must come from the environment,
#: since a text value is shown as it is.
CREDENTIAL_HEADER = re.compile(
    r"^(authorization|proxy-authorization|cookie)$"
    r"|(^|[-_])(api[-_]?key|key|token|secret|password|passwd|auth)$",
    re.IGNORECASE,
)
NEW_SECRET = (
    "python -c \"import base64, os; print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret. Raises ValueError saying what is
    wrong with it, never quoting it."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with {SECRET_PREFIX} (Standard Webhooks)")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX} is not valid base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key is {len(key)} bytes; it must be at least {MIN_KEY_BYTES}")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value of one request (Standard Webhooks, v1)."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def idempotency_key(item: PreparedItem, action: str = "deliver") -> str:
    """The ``Idempotency-Key`` of one action on one edition: the same on every retry of
    it, and a withdrawal's differs from the delivery's, so a receiver that drops
    repeated keys still acts on the withdrawal."""
    if action == "deliver":
        # The form receivers have stored since the first release: kept unchanged.
        return f"{item.id}:{item.edition}:{item.content_hash[:16]}"
    return f"{item.id}:{item.edition}:{action}"


def message_id(item: PreparedItem, action: str = "deliver") -> str:
    """Stable for every try of one action on one edition, and different between
    editions and between a delivery and its withdrawal (a receiver drops repeats)."""
    seed = f"{action}:{item.id}:{item.edition}:{item.content_hash}".encode()
    return "msg_" + hashlib.sha256(seed).hexdigest()[:32]


class WebhookChannel(Channel):
    """POSTs canonical JSON with an Idempotency-Key; signed (Standard Webhooks) with a secret."""

    name = "webhook"
    mode = "online"
    guarantee = "idempotency-key"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        url: str = Field(pattern=r"^https?://")
        token: SecretStr | None = None
        #: ``whsec_<base64 key>``: signs every request. Without it nothing is signed.
        secret: SecretStr | None = None
        #: Extra headers; a value named by environment variable is a secret.
        headers: dict[str, str | SecretStr] = {}

        @field_validator("secret")
        @classmethod
        def _is_a_signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
            if value is None or is_unset_secret(value.get_secret_value()):
                return value
            try:
                signing_key(value.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"{exc}; make a new one with {NEW_SECRET}") from None
            return value

        @field_validator("headers")
        @classmethod
        def _leaves_our_headers_alone(
            cls, value: dict[str, str | SecretStr]
        ) -> dict[str, str | SecretStr]:
            clash = sorted(k for k in value if k.lower() in OWN_HEADERS)
            if clash:
                raise ValueError(f"gongkai sets {', '.join(clash)} itself; remove it from headers")
            written = sorted(
                k for k, v in value.items() if isinstance(v, str) and CREDENTIAL_HEADER.search(k)
            )
            if written:
                name = written[0]
                variable = "GONGKAI_WEBHOOK_" + re.sub(r"\W+", "_", name).strip("_").upper()
                raise ValueError(
                    f"the header {name} carries a credential, and its value is written in the "
                    f'file; write "{name}" = {{ env = "{variable}" }} and export that variable'
                )
            return value

    def __init__(self, config, context) -> None:
        super().__init__(config, context)
        self.session = new_session(context)
        secret = config.secret.get_secret_value() if config.secret is not None else None
        self.key = signing_key(secret) if secret and not is_unset_secret(secret) else None

    def _headers(self, item: PreparedItem, action: str, body: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": idempotency_key(item, action),
            "webhook-id": message_id(item, action),
        }
        for name, value in self.config.headers.items():
            headers[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        if self.config.token is not None:
            headers["Authorization"] = f"Bearer {self.config.token.get_secret_value()}"
        if self.key is not None:
            # The time of this try, so a receiver's replay window holds for a retry
            # sent hours later; the id stays that of the edition.
            timestamp = int(self.context.clock().timestamp())
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = sign(self.key, headers["webhook-id"], timestamp, body)
        return headers

    def _shown_headers(self, item: PreparedItem) -> dict[str, str]:
        """The headers a delivery carries, for ``gongkai render``: secrets masked, and
        what is only known when sending described."""
        shown = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": idempotency_key(item),
            "webhook-id": message_id(item),
        }
        for name, value in self.config.headers.items():
            shown[name] = REDACTED if isinstance(value, SecretStr) else value
        if self.config.token is not None:
            shown["Authorization"] = f"Bearer {REDACTED}"
        # The config decides, not this shell: a verb that only looks may lack the secret.
        if self.config.secret is not None:
            shown["webhook-timestamp"] = "<seconds since 1970, at sending>"
            shown["webhook-signature"] = "<v1,HMAC-SHA256 of id.timestamp.body, at sending>"
        return shown

    def render(self, item: PreparedItem) -> Rendition:
        payload = {
            "id": item.id,
            "edition": item.edition,
            "content_hash": item.content_hash,
            "item": item.public_fields(),
        }
        return Rendition(
            media_type="application/json",
            body=canonical_json(payload),
            data={"headers": self._shown_headers(item), "signed": self.config.secret is not None},
        )

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        headers = self._headers(item, "deliver", rendition.body)
        try:
            response = self.session.post(
                self.config.url, data=rendition.body.encode("utf-8"), headers=headers
            )
        except requests.RequestException as exc:
            raise classify_exception(exc, "webhook POST") from None
        raise_for_status(response, "webhook POST")
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        return Receipt(
            external_id=str(answer.get("id") or item.id),
            url=answer.get("url"),
            data={"http_status": response.status_code},
        )

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        url = f"{self.config.url.rstrip('/')}/{item.id}"
        # Serialised here, not by requests, so that the signature covers these bytes.
        body = json.dumps({"reason": reason}, ensure_ascii=False)
        try:
            response = self.session.delete(
                url, data=body.encode("utf-8"), headers=self._headers(item, "withdraw", body)
            )
        except requests.RequestException as exc:
            raise classify_exception(exc, "webhook DELETE") from None
        if response.status_code != 404:  # already gone is what we wanted
            raise_for_status(response, "webhook DELETE")
        return receipt.model_copy(update={"status": "withdrawn"})


@hookimpl
def gongkai_register_channels():
    return [WebhookChannel]
