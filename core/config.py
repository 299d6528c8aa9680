"""Configuration: ``config.toml`` validated into frozen settings.

Secrets never sit in the file. A secret field names its environment variable::

    [channels.wechat]
    app_secret = { env = "GONGKAI_WECHAT_SECRET" }

Every error names the file, the key path and what to do.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gongkai.plugins.manager import CHANNEL_NAME

from .errors import ConfigError
from .log import register_secret

CONFIG_ENV = "GONGKAI_CONFIG"
#: The shortest secret config accepts (a WeChat AppSecret has 32, a Standard Webhooks
#: key 24 bytes and more). Shorter ones are guessable, and scrubbing them from logs
#: would star every place their few characters happen to appear.
MIN_SECRET_CHARS = 16
#: 统一社会信用代码 (18 characters) or an older organisation code.
OrgCode = Annotated[str, Field(pattern=r"^[0-9A-Z]{1,18}$")]
#: Keys of ``[channels.<name>]`` that core reads; the rest go to the channel's Config.
CORE_CHANNEL_KEYS = frozenset(
    {
        "enabled",
        "every_item",
        "concurrency",
        "connect_timeout",
        "read_timeout",
        "delivery_timeout",
        "retry",
        # Another instance of an installed channel under this table's name (several
        # webhook endpoints, each with its own delivery rows).
        "type",
    }
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Frozen):
    """Two layers: ``attempts`` tries within one run with exponential backoff and full
    jitter (at most ``max_seconds`` of waiting in all), then a cross-run ``schedule``
    of delays in seconds; when it runs out the delivery is ``failed``."""

    attempts: int = Field(default=4, ge=1, le=20)
    max_seconds: float = Field(default=60.0, ge=0)
    backoff_initial: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=20.0, ge=0)
    # Svix's schedule, less its leading "immediately" (that is the in-run retry).
    schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


class ChannelSettings(BaseModel):
    """One enabled channel: core's keys plus the channel's own validated Config."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    #: The installed channel whose class serves this table: its own name unless the
    #: table says ``type``.
    type: str = ""
    enabled: bool = True
    every_item: bool = False
    concurrency: int | None = Field(default=None, ge=1)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    delivery_timeout: float = Field(default=600.0, gt=0)
    retry: RetryPolicy = RetryPolicy()
    options: Any = None


class CalendarSettings(_Frozen):
    extra_holidays: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()


#: (digits kept at the start, digits kept at the end) of a masked number.
Keep = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]
#: The shortest number each policy masks: kept digits must be fewer, or the "masked"
#: number would show in full.
_SHORTEST = {"id_keep": 15, "phone_keep": 11, "bank_card_keep": 16, "landline_keep": 10}


class PrivacySettings(_Frozen):
    """One masking policy for every channel of a deployment: numbers masked two ways
    on two channels could be joined back together."""

    enabled: bool = True
    id_keep: Keep = (6, 4)
    phone_keep: Keep = (3, 4)
    bank_card_keep: Keep = (6, 4)
    keep_numbers: tuple[str, ...] = ()
    #: Landlines (028-84936677) are masked too. Off by default: most landlines in a
    #: notice are an office's public numbers; list those in keep_numbers when on.
    mask_landlines: bool = False
    landline_keep: Keep = (4, 2)
    #: Table columns whose header names a person: their cells are masked to 张* / 欧阳**.
    name_columns: tuple[str, ...] = (
        "姓名",
        "户主",
        "户主姓名",
        "申请人",
        "申请人姓名",
        "监护人",
        "补助对象",
        "被征收人",
    )
    #: Catalogue entries whose lists must show full names by law: names stay whole there.
    #: (The same as ``public_by_law = ["names"]`` on each of those catalogue entries.)
    full_names_for: tuple[str, ...] = ()
    #: Table columns whose header names a home address: their cells are cut to
    #: ``address_level``. Published lists go down to the township at most unless the
    #: deployment decides otherwise (DOMAIN: addresses to township/street level).
    address_columns: tuple[str, ...] = (
        "住址",
        "地址",
        "家庭住址",
        "家庭地址",
        "居住地址",
        "现住址",
        "户籍地址",
        "户籍所在地",
    )
    #: How far an address is kept: "township" (XX镇), "village" (XX镇XX村) or
    #: "group" (XX镇XX村3组). House numbers never stay.
    address_level: Literal["township", "village", "group"] = "township"

    @field_validator("id_keep", "phone_keep", "bank_card_keep", "landline_keep")
    @classmethod
    def _hides_something(cls, value: tuple[int, int], info: ValidationInfo) -> tuple[int, int]:
        shortest = _SHORTEST[info.field_name]
        if sum(value) >= shortest:
            raise ValueError(
                f"keeps {sum(value)} digits of a number that can be {shortest} digits "
                f"long, so nothing would be masked; keep fewer than {shortest} in all"
            )
        return value


class ContentSettings(_Frozen):
    """Pre-publication content checks. ``sensitive_words`` stop an item wherever a
    published text carries one (matched exactly and normalised: full-width forms,
    spaces or dots inside a word, traditional characters). ``sensitive_words_file`` is
    a UTF-8 list, one word a line, for lists too long for the config file."""

    sensitive_words: tuple[str, ...] = ()
    sensitive_words_file: Path | None = None
    #: The words read from ``sensitive_words_file`` when the config was loaded. Not a
    #: key of the file: it is a field so that the fingerprint of the settings, which
    #: decides whether an unchanged item file is read again, changes with the file.
    file_words: tuple[str, ...] = ()

    @field_validator("sensitive_words")
    @classmethod
    def _no_blank_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        words = tuple(word.strip() for word in value)
        for n, word in enumerate(words):
            if not word:
                raise ValueError(f"word {n + 1} is empty")
        return words

    @property
    def words(self) -> tuple[str, ...]:
        """Every sensitive word, inline ones first, each once."""
        return _merged_words(self.sensitive_words, self.file_words)


@lru_cache(maxsize=8)
def _merged_words(inline: tuple[str, ...], from_file: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(inline + from_file))


def read_word_file(source: str, path: Path) -> tuple[str, ...]:
    """The words of a sensitive-word file: one a line, ``#`` starts a comment, blank
    lines are skipped. Raises :class:`ConfigError` naming
    ``content.sensitive_words_file`` when it cannot be used."""
    key = "content.sensitive_words_file"
    try:
        # utf-8-sig: a list saved by Notepad starts with a BOM.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            source, key, f"{path} does not exist", "fix the path (relative to this config file)"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source,
            key,
            f"{path} is not UTF-8 text (byte {exc.start})",
            "save it as UTF-8 (in Notepad: Save as, Encoding UTF-8)",
        ) from None
    except OSError as exc:
        raise ConfigError(
            source,
            key,
            f"{path} cannot be read ({exc.strerror})",
            "check that it is a file and that gongkai may read it",
        ) from None
    words = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(dict.fromkeys(word for word in words if word))


class ParitySettings(_Frozen):
    """``gongkai parity``: a confirmation (posting, broadcast, take-down, replacement)
    still missing this many days after its notice was written is overdue."""

    overdue_days: int = Field(default=3, ge=0, le=365)


class ReportWeights(_Frozen):
    """How much each part of the assessment counts in a unit's score (``gongkai
    report``). A part with no case for a unit (no policy released, say) is left out and
    the others share its weight."""

    timeliness: float = Field(default=40, ge=0)
    cycles: float = Field(default=20, ge=0)
    interpretation: float = Field(default=15, ge=0)
    responses: float = Field(default=10, ge=0)
    parity: float = Field(default=15, ge=0)

    @model_validator(mode="after")
    def _something_counts(self) -> ReportWeights:
        if not any(self.model_dump().values()):
            raise ValueError("every weight is 0; give at least one part a weight above 0")
        return self


class ReportSettings(_Frozen):
    """``gongkai report``: the assessment (考核) and its notice (通报)."""

    weights: ReportWeights = ReportWeights()
    #: A policy's 解读 is in step when published within this many working days of it.
    interpretation_days: int = Field(default=3, ge=0, le=60)
    #: Catalogue entry keys (fnmatch patterns) whose releases are policies needing a 解读.
    policy_entries: tuple[str, ...] = ("*.policy", "*-policy")
    #: A unit with at least this score and nothing overdue is commended in the notice.
    commend_score: float = Field(default=90, ge=0, le=100)
    #: Who issues the notice (落款).
    issuer: str = "金堂县政务公开工作领导小组办公室"
    #: A Jinja2 template replacing the shipped notice (relative to the config file).
    notice_template: Path | None = None


class PluginSettings(_Frozen):
    """``strict``: a broken plugin is fatal. ``disabled``: plugin names to block.
    ``load``: extra plugin modules by dotted name, for local plugins that are not
    packaged with an entry point."""

    strict: bool = False
    disabled: tuple[str, ...] = ()
    load: tuple[str, ...] = ()


class Settings(_Frozen):
    """The whole configuration. Paths are absolute (relative ones in the file are
    relative to the file's folder)."""

    source: str = "<defaults>"
    state_dir: Path = Path(".gongkai")
    catalogue: tuple[str, ...] = ("default",)
    concurrency: int = Field(default=8, ge=1, le=256)
    lease_seconds: float = Field(default=900.0, gt=0)
    ledger_sync: Literal["normal", "full"] = "normal"
    #: None: the embedded SQLite file under state_dir. ``postgresql://user@host/db``:
    #: a PostgreSQL database that writers and workers on several hosts share.
    ledger: str | None = None
    #: The PostgreSQL password, named by its variable: ``{ env = "GONGKAI_PG_PASSWORD" }``.
    ledger_password: SecretStr | None = None
    #: No default: an index number is permanent, so one minted from a placeholder
    #: code would be wrong for ever.
    org_code: OrgCode | None = None
    org_codes: dict[str, OrgCode] = {}
    #: A folder besides each item file's own from which attachments may be taken.
    attachments_root: Path | None = None
    calendar: CalendarSettings = CalendarSettings()
    privacy: PrivacySettings = PrivacySettings()
    content: ContentSettings = ContentSettings()
    plugins: PluginSettings = PluginSettings()
    parity: ParitySettings = ParitySettings()
    report: ReportSettings = ReportSettings()
    # With no config file at all, the archive channel still records every edition.
    channels: dict[str, dict[str, Any]] = {"archive": {"every_item": True}}

    @field_validator("ledger")
    @classmethod
    def _ledger_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "write a PostgreSQL URL, postgresql://user@host:5432/database, or leave "
                "ledger out to use the SQLite file under state_dir"
            )
        if re.search(r"://[^/@]*:[^/@]*@", value) or re.search(r"[?&]password=", value):
            raise ValueError(
                "a password is written in the URL; remove it and name the environment "
                'variable that holds it: ledger_password = { env = "GONGKAI_PG_PASSWORD" }'
            )
        return value

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite3"

    def ledger_secret(self) -> str | None:
        """The PostgreSQL password (from its variable, read when config was loaded)."""
        return self.ledger_password.get_secret_value() if self.ledger_password else None

    def org_code_for(self, publisher: str) -> str | None:
        """The code index numbers of ``publisher``'s items are minted from, or None
        when config names none (the item cannot get an index number)."""
        return self.org_codes.get(publisher, self.org_code)


_SECTIONS = {
    "gongkai",
    "org_codes",
    "calendar",
    "privacy",
    "content",
    "plugins",
    "parity",
    "report",
    "channels",
}


#: What to tell an operator, by pydantic error type.
_FIXES = {
    "string_pattern_mismatch": "write it in the form the pattern above shows",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "date_type": "write dates as YYYY-MM-DD",
    "date_from_datetime_parsing": "write dates as YYYY-MM-DD",
    "date_parsing": "write dates as YYYY-MM-DD",
}


def _error_from_validation(source: str, prefix: str, exc: ValidationError) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    key = ".".join([prefix, *(str(p) for p in err["loc"])]).strip(".")
    if err["type"] == "extra_forbidden":
        return ConfigError(source, key, "unknown key", "remove it or check its spelling")
    problem = err["msg"].removeprefix("Value error, ")
    if key == "gongkai.org_code" or key.startswith("org_codes."):
        fix = "write the organisation's 统一社会信用代码: 18 digits or capital letters, no spaces"
    elif key == "content.sensitive_words" and err["type"] == "value_error":
        fix = "remove the empty word from the list"
    else:
        fix = _FIXES.get(err["type"], "correct the value")
    return ConfigError(source, key, problem, fix)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from ``path``, ``$GONGKAI_CONFIG``, ``./config.toml``, or defaults."""
    if path is None:
        path = os.environ.get(CONFIG_ENV) or (
            "config.toml" if Path("config.toml").is_file() else None
        )
    if path is None:
        return Settings(state_dir=Path(".gongkai").resolve(), **overrides)
    file = Path(path)
    source = str(file)
    try:
        # utf-8-sig: Notepad on older Windows saves UTF-8 with a BOM.
        data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(
            source, "", "file not found", f"create it (gongkai init) or set {CONFIG_ENV}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            source, "", "not UTF-8 text", "save it as UTF-8 (TOML files must be UTF-8)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            source, "", f"cannot be read ({exc.strerror})", "check the path and permissions"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML ({exc})", "fix the syntax") from exc
    return settings_from_dict(data, source=source, base_dir=file.resolve().parent, **overrides)


def settings_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "<dict>",
    base_dir: Path | None = None,
    **overrides: Any,
) -> Settings:
    base_dir = base_dir or Path.cwd()
    unknown = set(data) - _SECTIONS
    if unknown:
        raise ConfigError(
            source,
            sorted(unknown)[0],
            "unknown section",
            f"use only {', '.join(sorted(_SECTIONS))}",
        )
    flat: dict[str, Any] = dict(data.get("gongkai", {}))
    content = data.get("content")
    if isinstance(content, Mapping) and "file_words" in content:
        raise ConfigError(
            source,
            "content.file_words",
            "unknown key",
            "list words in sensitive_words, or in the file sensitive_words_file names",
        )
    sections = ("org_codes", "calendar", "privacy", "content", "plugins", "parity", "report")
    for section in (*sections, "channels"):
        if section in data:
            flat[section] = data[section]
    flat.update(overrides)
    if "ledger_password" in flat:
        flat["ledger_password"] = _ledger_password(source, flat["ledger_password"])
    try:
        settings = Settings.model_validate({**flat, "source": source})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        prefix = "" if str(err["loc"][0]) in _SECTIONS else "gongkai"
        raise _error_from_validation(source, prefix, exc) from exc
    state_dir = (
        settings.state_dir if settings.state_dir.is_absolute() else base_dir / settings.state_dir
    )
    catalogue = tuple(
        c if c == "default" or Path(c).is_absolute() else str(base_dir / c)
        for c in settings.catalogue
    )
    for index, path in enumerate(catalogue):
        if path != "default" and not Path(path).is_file():
            raise ConfigError(
                source,
                f"gongkai.catalogue.{index}",
                f"catalogue file {path} does not exist",
                "fix the path (relative to this config file), or remove the entry",
            )
    for index, module in enumerate(settings.plugins.load):
        if not _importable(module):
            raise ConfigError(
                source,
                f"plugins.load.{index}",
                f"no module named '{module}' can be imported",
                "check the dotted name, and that the module is installed or on PYTHONPATH",
            )
    root = settings.attachments_root
    if root is not None and not root.is_absolute():
        root = base_dir / root
    return settings.model_copy(
        update={
            "state_dir": state_dir,
            "catalogue": catalogue,
            "attachments_root": root,
            "content": _with_file_words(settings.content, source, base_dir),
            "report": _with_template(settings.report, source, base_dir),
        }
    )


def _with_template(report: ReportSettings, source: str, base_dir: Path) -> ReportSettings:
    path = report.notice_template
    if path is None:
        return report
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ConfigError(
            source,
            "report.notice_template",
            f"notice template {path} does not exist",
            "fix the path (relative to this config file), or remove the key to use the "
            "shipped template",
        )
    return report.model_copy(update={"notice_template": path})


def _ledger_password(source: str, value: Any) -> Any:
    """``{ env = "VAR" }``: the variable's value (set, long enough, and registered so
    that no log shows it). A password written in the file is refused."""
    if _is_env_ref(value):
        return SecretStr(_env_value(source, "gongkai.ledger_password", value["env"], secret=True))
    if isinstance(value, SecretStr):
        return value  # settings built in code
    raise ConfigError(
        source,
        "gongkai.ledger_password",
        "a secret is written in the file",
        'remove it and write ledger_password = { env = "GONGKAI_PG_PASSWORD" }, then set '
        "that variable in the environment of every gongkai process",
    )


def _with_file_words(content: ContentSettings, source: str, base_dir: Path) -> ContentSettings:
    path = content.sensitive_words_file
    if path is None:
        return content
    if not path.is_absolute():
        path = base_dir / path
    return content.model_copy(
        update={"sensitive_words_file": path, "file_words": read_word_file(source, path)}
    )


def _importable(module: str) -> bool:
    # find_spec imports the parent packages; a missing parent raises instead of
    # returning None.
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _is_secret_field(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def holds_secrets(annotation: Any) -> bool:
    """Whether SecretStr appears anywhere in a field's type (``dict[str, str | SecretStr]``)."""
    return annotation is SecretStr or any(holds_secrets(a) for a in get_args(annotation))


def unset_secret(variable: str) -> str:
    """The placeholder a secret whose variable is unset gets in verbs that send nothing."""
    return f"<{variable} is not set>"


def is_unset_secret(value: str) -> bool:
    """Whether ``value`` is such a placeholder: a channel that checks a secret's form
    lets it pass, since it never reaches a remote."""
    return bool(re.fullmatch(r"<\w+ is not set>", value))


def _is_env_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"env"}


def _resolve_nested(
    table: dict[str, Any], source: str, key: str, missing: list[str] | None
) -> dict[str, Any]:
    """``{ env = "VAR" }`` values inside a table key (header values): each becomes a
    SecretStr, masked wherever the table is shown, and is scrubbed from logs."""
    resolved: dict[str, Any] = {}
    for name, value in table.items():
        if not _is_env_ref(value):
            resolved[name] = value
            continue
        variable = value["env"]
        if variable not in os.environ and missing is not None:
            missing.append(f"{key}.{name} (${variable})")
            resolved[name] = SecretStr(unset_secret(variable))
            continue
        resolved[name] = SecretStr(_env_value(source, f"{key}.{name}", variable, secret=True))
    return resolved


def _env_value(source: str, path: str, variable: str, *, secret: bool) -> str:
    """The value of ``variable`` for the key ``path``, remembered for scrubbing. A
    secret shorter than :data:`MIN_SECRET_CHARS` is refused: it is guessable, and
    scrubbing it would star those few characters wherever they appear (in ids, paths
    and words of every log line)."""
    if variable not in os.environ:
        raise ConfigError(
            source,
            path,
            f"environment variable {variable} is not set",
            f"export {variable}, or set enabled = false for this channel",
        )
    value = os.environ[variable]
    if secret and len(value) < MIN_SECRET_CHARS:
        raise ConfigError(
            source,
            path,
            f"the secret in environment variable {variable} has {len(value)} characters; "
            f"gongkai takes secrets of {MIN_SECRET_CHARS} characters or more",
            f"set {variable} to a longer secret: the whole credential the remote issued (a "
            "WeChat AppSecret has 32 characters), a longer one from its administrator, or "
            "for one you choose, the output of "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"',
        )
    # A value that is no secret by its field's type (a URL from the environment) is
    # scrubbed too, in case it carries a credential, but only when long enough not to
    # star common words.
    if secret or len(value) >= MIN_SECRET_CHARS:
        register_secret(value)
    return value


def _resolve_env_refs(
    raw: dict[str, Any],
    config_cls: type[BaseModel],
    source: str,
    key: str,
    missing: list[str] | None = None,
) -> dict[str, Any]:
    """Replace ``{ env = "VAR" }`` by the variable's value. An unset variable is an
    error, unless ``missing`` collects it (verbs that send nothing): the value is then
    a placeholder that never reaches a remote."""
    resolved: dict[str, Any] = {}
    fields = config_cls.model_fields
    for name, value in raw.items():
        path = f"{key}.{name}"
        if (
            isinstance(value, dict)
            and not _is_env_ref(value)
            and name in fields
            and holds_secrets(fields[name].annotation)
        ):
            resolved[name] = _resolve_nested(value, source, path, missing)
            continue
        if _is_env_ref(value):
            variable = value["env"]
            secret = name in fields and _is_secret_field(fields[name].annotation)
            # Only a secret gets a placeholder: it is masked wherever it is shown, and a
            # placeholder URL or number would fail validation with a puzzling message.
            if variable not in os.environ and missing is not None and secret:
                missing.append(f"{path} (${variable})")
                resolved[name] = unset_secret(variable)
                continue
            resolved[name] = _env_value(source, path, variable, secret=secret)
            continue
        if name in fields and _is_secret_field(fields[name].annotation) and value is not None:
            raise ConfigError(
                source,
                path,
                "a secret is written in the file",
                f'remove it and write {name} = {{ env = "GONGKAI_{key.split(".")[-1].upper()}_'
                f'{name.upper()}" }}, then export that variable',
            )
        resolved[name] = value
    return resolved


def build_channel_settings(
    settings: Settings,
    channel_classes: Mapping[str, type],
    refused: Mapping[str, str] | None = None,
    missing_secrets: list[str] | None = None,
) -> dict[str, ChannelSettings]:
    """Validate every ``[channels.<name>]`` table against its channel's Config.

    Returns the enabled channels only. A table for a channel no plugin offers is an
    error, since a typo there would silently stop a whole channel; ``refused`` maps
    the names of channel classes the plugin manager refused to why, for the message.
    With a ``missing_secrets`` list, secrets whose variable is unset are listed there
    instead of raising (for verbs that only look).
    """
    enabled: dict[str, ChannelSettings] = {}
    for name, table in settings.channels.items():
        key = f"channels.{name}"
        if not isinstance(table, dict):
            raise ConfigError(settings.source, key, "must be a table", f"write [{key}]")
        kind = _channel_type(settings.source, name, table, channel_classes)
        if kind in (refused or {}):
            raise ConfigError(
                settings.source,
                key,
                f"the channel '{kind}' was refused: {refused[kind]}",
                "fix the plugin (docs/channels.md), or set enabled = false",
            )
        if kind not in channel_classes and "type" in table:
            raise ConfigError(
                settings.source,
                f"{key}.type",
                f"no installed channel type is named '{kind}'",
                f"use one of: {', '.join(sorted(channel_classes)) or 'none'} "
                "(`gongkai channels` lists them), or install the plugin that provides it",
            )
        if kind not in channel_classes:
            raise ConfigError(
                settings.source,
                key,
                f"no installed channel is named '{name}'",
                'install the plugin that provides it, fix the name, add type = "<channel>" '
                "to make it another instance of an installed one, or remove the table "
                "(`gongkai channels` lists the installed ones)",
            )
        if not table.get("enabled", True):
            continue
        core = {k: v for k, v in table.items() if k in CORE_CHANNEL_KEYS}
        core["type"] = kind
        own = {k: v for k, v in table.items() if k not in CORE_CHANNEL_KEYS}
        config_cls = channel_classes[kind].Config
        if getattr(channel_classes[kind], "unavailable", None):
            # A stand-in for a broken plugin (core/unavailable.py): its table is for
            # the real Config, read once the plugin is fixed.
            own = {}
        own = _resolve_env_refs(own, config_cls, settings.source, key, missing_secrets)
        try:
            # A channel's relative paths (the portal's out_dir) may resolve against it.
            options = config_cls.model_validate(own, context={"state_dir": settings.state_dir})
        except ValidationError as exc:
            raise _error_from_validation(settings.source, key, exc) from exc
        try:
            enabled[name] = ChannelSettings.model_validate(
                {**core, "name": name, "options": options}
            )
        except ValidationError as exc:
            raise _error_from_validation(settings.source, key, exc) from exc
    return enabled


def _channel_type(
    source: str, name: str, table: dict[str, Any], channel_classes: Mapping[str, type]
) -> str:
    """The installed channel a ``[channels.<name>]`` table configures: ``type`` when
    given (one more instance under its own name, with its own delivery rows), else
    the table's name. Whether that channel is installed is for the caller to say."""
    if "type" not in table:
        return name
    kind = table["type"]
    if not isinstance(kind, str) or not kind:
        raise ConfigError(
            source,
            f"channels.{name}.type",
            "must be the name of an installed channel, in quotes",
            'write e.g. type = "webhook" (`gongkai channels` lists the installed ones)',
        )
    if not CHANNEL_NAME.match(name):
        raise ConfigError(
            source,
            f"channels.{name}",
            "an instance name must be 1-32 lowercase letters, digits or _, starting "
            "with a letter (it names the delivery rows and the catalogue's routing)",
            "rename the table, e.g. [channels.oa_push]",
        )
    if name != kind and name in channel_classes:
        raise ConfigError(
            source,
            f"channels.{name}.type",
            f"'{name}' is the name of the installed {name} channel, so this {kind} "
            "instance would hide it",
            f"give the {kind} instance another name, e.g. [channels.{kind}_{name}]",
        )
    return kind
