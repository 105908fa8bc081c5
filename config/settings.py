"""The Settings model: one TOML file plus ``DESKPULSE_*`` environment overrides.

Why a hand-written env overlay on top of pydantic-settings: the documented way
to pass a secret for the first source is ``DESKPULSE_SOURCES__0__API_TOKEN``,
and pydantic-settings cannot address list items by index. We therefore merge
the TOML document and the environment into one dict (env wins, ``__`` nests,
numeric segments index lists) and let pydantic validate the result once, so
every error names one field and the file it came from.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.errors import ConfigError

ENV_PREFIX = "DESKPULSE_"
DEFAULT_CONFIG = Path("deskpulse.toml")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
#: the longest duration any setting accepts: beyond it a value is a typo, and APScheduler/timedelta overflow
MAX_DURATION_S = 366 * 86400
#: ``[schedule] sync_every`` and ``misfire_grace``: a job later than a week is not "late", it is lost
MAX_SCHEDULE_S = 7 * 86400


def parse_duration(text: str | int | float) -> int:
    """Turn ``"15m"``, ``"1h30m"``, ``"45s"`` or a number of seconds into seconds."""
    if isinstance(text, int | float):
        if not 0 < text <= MAX_DURATION_S:  # also rejects NaN (every comparison is False)
            raise ValueError(f"must be a duration of 1s..{MAX_DURATION_S // 86400}d")
        return int(text)
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f"'{text}' is not a duration (use e.g. 30s, 15m, 1h, 1h30m, 1d)")
    d, h, m, s = (int(g or 0) for g in match.groups())
    seconds = d * 86400 + h * 3600 + m * 60 + s
    if seconds <= 0:
        raise ValueError("must be a positive duration")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"'{text.strip()}' is longer than {MAX_DURATION_S // 86400} days")
    return seconds


def parse_hours(text: str) -> tuple[time, time]:
    """Parse ``"09:00-17:00"`` into (start, end); end must be after start (``24:00`` allowed)."""
    match = _HOURS.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a span of hours (use HH:MM-HH:MM)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if not (0 <= h1 <= 23 and 0 <= m1 <= 59 and 0 <= h2 <= 24 and 0 <= m2 <= 59) or (h2 == 24 and m2):
        raise ValueError(f"'{text}' has an impossible time")
    start = time(h1, m1)
    end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"'{text}' ends before it starts")
    return start, end


def check_port(parts: SplitResult) -> None:
    """A URL's port, when given, must be 1..65535: ``urlsplit().port`` raises only when it is read, mid-run."""
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port (use 1..65535)") from None
    if port == 0:
        raise ValueError("has an invalid port (use 1..65535)")


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses: the only hosts allowed over plain http."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SourceBase(_Model):
    """Fields every helpdesk source has. ``base_url`` lets a sandbox, proxy or simulator stand in."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    base_url: str
    timeout_connect: float = Field(default=10.0, gt=0)
    timeout_read: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=20)
    max_retry_wait: float = Field(default=300.0, gt=0, description="cap on a single Retry-After wait, seconds")
    request_deadline: float = Field(
        default=300.0, gt=0, le=3600,
        description="overall limit on one HTTP attempt, seconds: a server that trickles bytes cannot hold a sync")
    requests_per_minute: int | None = Field(default=None, gt=0, description="account-wide budget override")
    distress_field: str | None = Field(default=None, description="custom field id/name for the CDI on this source")
    lookback: str = Field(
        default="1h", description="re-read window behind every time-based bookmark (clock skew, late-indexed records)")

    @field_validator("lookback")
    @classmethod
    def _check_lookback(cls, value: str) -> str:
        seconds = 0 if value.strip() in ("0", "0s") else parse_duration(value)
        if seconds > 7 * 86400:
            raise ValueError(f"'{value}' is outside 0s..7d")
        return value

    @property
    def lookback_s(self) -> int:
        """The lookback in seconds (see DESIGN.md, sync contract 2)."""
        return 0 if self.lookback.strip() in ("0", "0s") else parse_duration(self.lookback)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{value}' is not an http(s) URL")
        check_port(parts)
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; put them in their own fields")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("must use https unless it points at localhost/127.0.0.1")
        return value.rstrip("/")


#: The source models ``Settings.sources`` validates against, by kind. Empty until the caller registers the
#: installed connector plugins' models (sync does, see :func:`use_source_models`): config discovers nothing
#: itself, so it never imports a connector.
_SOURCE_MODELS: dict[str, type[SourceBase]] = {}


class _NoSourceKinds(SourceBase):
    """What a source validates against while no source model is registered: every kind is unknown.

    A ``SourceBase`` to type checkers (``Settings.sources`` is a list of sources whatever gets registered);
    at run time it refuses every entry before looking at any field.
    """

    kind: str

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, data: Any) -> Any:
        kind = data.get("kind") if isinstance(data, Mapping) else None
        raise ValueError(f"unknown kind '{kind}' (installed: none)")


def _sources_type(models: Mapping[str, type[SourceBase]]) -> Any:
    """``list[<the models, discriminated by kind>]``: a type built at run time, so checkers cannot follow it."""
    if not models:
        return list[_NoSourceKinds]
    union = Union[tuple(models.values())]  # type: ignore[valid-type]  # noqa: UP007 - the registered models
    return list[Annotated[union, Field(discriminator="kind")]]  # type: ignore[valid-type]


def use_source_models(models: Mapping[str, type[SourceBase]]) -> None:
    """Validate ``[[sources]]`` against ``models`` (kind -> model, each with ``kind: Literal[kind]``) from now on.

    Why a registration rather than a hard-coded union: the installed connector plugins decide which kinds
    exist, and config must not import them. Idempotent; rebuilding the model only when the set changes.
    """
    wanted = dict(sorted(models.items()))
    for kind, model in wanted.items():
        if not (isinstance(model, type) and issubclass(model, SourceBase)):
            raise TypeError(f"source model for kind '{kind}' must subclass SourceBase")
    if wanted == _SOURCE_MODELS:
        return
    _SOURCE_MODELS.clear()
    _SOURCE_MODELS.update(wanted)
    Settings.model_fields["sources"].annotation = _sources_type(wanted)
    Settings.model_rebuild(force=True)


def source_kinds() -> list[str]:
    """The kinds ``[[sources]]`` currently accepts."""
    return list(_SOURCE_MODELS)


class StoreSettings(_Model):
    path: Path = Path("deskpulse.db")


class EscalationSettings(_Model):
    """What makes a ticket 'escalated' (KPIS.md): top severity, an escalation group, or a tag."""

    top_severity: int = 3
    groups: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=lambda: ["escalated"])


#: ``[kpi] severity_map`` when the configuration has none: each kind's vendor priority -> severity map as its
#: connector plugin declares it (``ConnectorPlugin.severity_map``). Empty until the caller registers them (sync
#: does, with the source models, see :func:`use_severity_defaults`): config names no vendor's priorities.
_SEVERITY_DEFAULTS: dict[str, dict[str, int]] = {}


def use_severity_defaults(maps: Mapping[str, Mapping[str, int]]) -> None:
    """Make ``maps`` (kind -> priority -> severity) the default ``[kpi] severity_map`` of settings built from now on.

    A configured ``[kpi] severity_map`` (file or environment) still replaces the whole default, as it always
    did: the defaults fill in only when the user configured no map at all.
    """
    wanted = {kind: dict(mapping) for kind, mapping in sorted(maps.items())}
    _SEVERITY_DEFAULTS.clear()
    _SEVERITY_DEFAULTS.update(wanted)


def _default_severity_map() -> dict[str, dict[str, int]]:
    return {kind: dict(mapping) for kind, mapping in _SEVERITY_DEFAULTS.items()}


class KpiSettings(_Model):
    """Reporting timezone and the business-hours schedule every ``_business`` KPI uses."""

    timezone: str = "UTC"
    business_hours: dict[str, str] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)
    severity_map: dict[str, dict[str, int]] = Field(
        default_factory=_default_severity_map,
        description="kind -> vendor priority -> severity; replaces the plugins' defaults as a whole")
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{value}'") from None
        return value

    @field_validator("business_hours")
    @classmethod
    def _check_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"'{day}' is not a weekday (use {', '.join(WEEKDAYS)})")
            for part in span.split(","):
                parse_hours(part)
        return value


class CostSettings(_Model):
    monthly_total: float | None = Field(default=None, ge=0)
    currency: str = "USD"


class SlaSettings(_Model):
    """Targets in minutes per severity."""

    first_reply: dict[int, int] = Field(default_factory=dict)
    resolution: dict[int, int] = Field(default_factory=dict)
    business_hours: bool = True


#: The strictest tag rule of the supported helpdesks: Freshdesk refuses a tag longer than 32 characters or
#: containing a comma with a 400 on the whole ticket update (API-NOTES 6.3).
TAG_MAX_LENGTH = 32


class DistressSettings(_Model):
    tag: str = "deskpulse_distress"
    field: str | None = None
    value_field: str = "arr"
    weights: dict[str, float] = Field(default_factory=dict)
    green_max: int = Field(default=40, ge=0, le=100)
    yellow_max: int = Field(default=70, ge=0, le=100)
    rise_points: int = Field(default=15, ge=1, le=100)
    remove_when_recovered: bool = False
    reference: dict[str, float] = Field(default_factory=dict)

    @field_validator("tag")
    @classmethod
    def _check_tag(cls, value: str) -> str:
        """Refuse at load a tag some helpdesk would refuse on every write-back (API-NOTES 6.3)."""
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > TAG_MAX_LENGTH or "," in value:
            raise ValueError(f"'{value}' cannot be written back: Freshdesk tags are at most {TAG_MAX_LENGTH} "
                             "characters and may not contain commas")
        return value

    @model_validator(mode="after")
    def _check_bands(self) -> DistressSettings:
        if self.yellow_max < self.green_max:
            raise ValueError("yellow_max must be >= green_max")
        return self


#: Where people write from their own mailbox: such a domain says nothing about which customer they belong to,
#: so it never merges customers across helpdesks (``[customers] personal_domains`` adds to it). A trailing
#: ``.*`` matches any top-level domain (``gmx.*``: gmx.de, gmx.net, gmx.at ...).
PERSONAL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com",
    "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "ymail.com", "rocketmail.com", "aol.com", "icloud.com",
    "me.com", "mac.com", "gmx.*", "web.de", "t-online.de", "freenet.de", "posteo.de", "mailbox.org",
    "proton.me", "protonmail.com", "pm.me", "tutanota.com", "tuta.io", "zoho.com", "yandex.ru", "yandex.com",
    "mail.ru", "qq.com", "163.com", "126.com", "naver.com", "orange.fr", "free.fr", "laposte.net", "libero.it",
    "fastmail.com", "hey.com", "mail.com", "email.com", "inbox.com", "seznam.cz", "wp.pl", "o2.pl",
)
CustomerMatcher = Literal["domain", "external_id", "email"]
CUSTOMER_MATCHERS: tuple[CustomerMatcher, ...] = ("domain", "external_id", "email")


class CustomerSettings(_Model):
    """``[customers]``: how organizations of several helpdesks become one customer (kpi_engine.customers)."""

    match: bool = True
    match_by: list[CustomerMatcher] = Field(
        default_factory=lambda: list(CUSTOMER_MATCHERS),
        description="automatic matching rules: organizations sharing an e-mail domain or an external id, and "
                    "requesters without an organization sharing an e-mail address")
    personal_domains: list[str] = Field(default_factory=list, description="added to the built-in list")
    map: dict[str, list[str]] = Field(
        default_factory=dict, description='customer name -> ["<source name>:<organization id>", ...]; wins over '
                                          "automatic matching")

    @field_validator("personal_domains")
    @classmethod
    def _check_domains(cls, value: list[str]) -> list[str]:
        out = []
        for domain in value:
            clean = domain.strip().lower().lstrip("@")
            if not clean or " " in clean or "@" in clean:
                raise ValueError(f"'{domain}' is not an e-mail domain (write e.g. 'freemail.example')")
            out.append(clean)
        return out

    @field_validator("map")
    @classmethod
    def _check_map(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        """Each member is ``source:organization id``, and belongs to one customer only."""
        owner: dict[str, str] = {}
        for name, members in value.items():
            if not name.strip():
                raise ValueError("a customer name must not be empty")
            if not members:
                raise ValueError(f"'{name}': list at least one \"<source name>:<organization id>\"")
            for member in members:
                source, sep, org = member.partition(":")
                if not sep or not source.strip() or not org.strip():
                    raise ValueError(f"'{name}': '{member}' is not \"<source name>:<organization id>\"")
                if member in owner and owner[member] != name:
                    raise ValueError(f"'{member}' is mapped to both '{owner[member]}' and '{name}'")
                owner[member] = name
        return value


class WritebackSettings(_Model):
    enabled: bool = False
    max_writes_per_run: int = Field(default=500, ge=0)


class SlackSettings(_Model):
    webhook_url: SecretStr | None = None
    bot_token: SecretStr | None = None
    channel: str | None = None
    api_base_url: str = "https://slack.com"

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("is not an http(s) URL")
        check_port(parts)  # the message never echoes the URL: a webhook URL is a secret
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("must use https unless it points at localhost/127.0.0.1")
        return value

    @model_validator(mode="after")
    def _check_token_channel(self) -> SlackSettings:
        if self.bot_token is not None and not self.channel:
            raise ValueError("bot_token needs a channel")
        return self


class ScheduleSettings(_Model):
    sync_every: str = "15m"
    digest: str = "mon 09:00"
    misfire_grace: str = "10m"

    @field_validator("sync_every", "misfire_grace")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        if parse_duration(value) > MAX_SCHEDULE_S:
            raise ValueError(f"'{value}' is outside 1s..{MAX_SCHEDULE_S // 86400}d")
        return value

    @field_validator("digest")
    @classmethod
    def _check_digest(cls, value: str) -> str:
        match = re.match(r"^(mon|tue|wed|thu|fri|sat|sun)\s+(\d{1,2}):(\d{2})$", value.strip())
        if not match or int(match.group(2)) > 23 or int(match.group(3)) > 59:
            raise ValueError(f"'{value}' is not a weekly time (use e.g. 'mon 09:00')")
        return value

    @property
    def sync_every_s(self) -> int:
        return parse_duration(self.sync_every)

    @property
    def misfire_grace_s(self) -> int:
        return parse_duration(self.misfire_grace)


def parse_listen(value: str) -> tuple[str, int] | None:
    """``[daemon] listen``: ``"HOST:PORT"`` (an IP address or ``localhost``; IPv6 in brackets, ``[::1]:9464``)
    to a (host, port) pair, or None for ``""`` (no endpoint). Port 0 picks a free port (the daemon logs it)."""
    text = value.strip()
    if not text:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"'{text}' is not HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464, or \"\" to turn it off)")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"'{text}' has an invalid port (use 0..65535)")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if bare != "localhost":
        try:
            address = ipaddress.ip_address(bare)
        except ValueError:
            raise ValueError(f"'{text}': '{host}' is not an IP address or localhost") from None
        if address.version == 6 and bare == host:
            raise ValueError(f"'{text}': write an IPv6 address in brackets, e.g. [::1]:{port}")
    return bare, port


class ReportSettings(_Model):
    """Where the daemon writes the week's HTML report (``dir``), and the address the digest links it at (``url``:
    the folder as your web server publishes it, e.g. ``https://intranet.example/support-reports/``)."""

    dir: str | None = None
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _check_report_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{value}' is not an http(s) URL")
        check_port(parts)
        return value

    @model_validator(mode="after")
    def _url_needs_dir(self) -> ReportSettings:
        if self.url and not self.dir:
            raise ValueError("url needs dir: the daemon writes the report into dir, the digest links it at url")
        return self


class DaemonSettings(_Model):
    """``[daemon]``: the daemon's ``/metrics`` and ``/healthz`` endpoint (sync.health)."""

    listen: str = Field(default="127.0.0.1:9464", description='HOST:PORT to serve on, "" for none')
    healthy_within: float = Field(
        default=3.0, ge=1, le=1000,
        description="/healthz is 503 once a source has not succeeded for this many sync intervals")
    startup_grace: str = Field(
        default="1h", description="after start, a source that has not run yet is not late for this long")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value.strip()

    @field_validator("startup_grace")
    @classmethod
    def _check_grace(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def listen_address(self) -> tuple[str, int] | None:
        return parse_listen(self.listen)

    @property
    def startup_grace_s(self) -> int:
        return parse_duration(self.startup_grace)


class Settings(BaseSettings):
    """Everything deskpulse is configured with. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    store: StoreSettings = Field(default_factory=StoreSettings)
    sources: list[_NoSourceKinds] = Field(default_factory=list)  # see use_source_models
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    costs: CostSettings = Field(default_factory=CostSettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    distress: DistressSettings = Field(default_factory=DistressSettings)
    customers: CustomerSettings = Field(default_factory=CustomerSettings)
    writeback: WritebackSettings = Field(default_factory=WritebackSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):  # noqa: ANN001, ANN206
        """Only the merged dict handed to the constructor counts; see the module docstring."""
        return (init_settings,)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for index, source in enumerate(self.sources):
            if source.name in seen:
                raise ValueError(f"sources[{index}].name '{source.name}' is used twice")
            seen.add(source.name)
        return self

    def source(self, name: str) -> Any:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"unknown source '{name}' (configured: {known})")


def _set_path(doc: dict[str, Any], parts: list[str], value: str) -> None:
    node: Any = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit():
                raise ConfigError(f"environment variable {ENV_PREFIX}{'__'.join(parts).upper()}: "
                                  f"'{part}' should be a list index")
            index = int(part)
            while len(node) <= index:
                node.append({})
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        key = part
        if last:
            node[key] = value
        else:
            nxt = node.get(key)
            if nxt is None:
                nxt = [] if parts[i + 1].isdigit() else {}
                node[key] = nxt
            node = nxt


def overlay_env(doc: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``DESKPULSE_A__B__0__C=value`` overrides onto the TOML document (in place)."""
    for raw_key in sorted(env):
        if not raw_key.startswith(ENV_PREFIX) or raw_key in (f"{ENV_PREFIX}CONFIG", f"{ENV_PREFIX}DB"):
            continue
        parts = [p.lower() for p in raw_key[len(ENV_PREFIX):].split("__") if p]
        if parts:
            _set_path(doc, parts, env[raw_key])
    return doc


def _describe_loc(loc: tuple[Any, ...], doc: dict[str, Any]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        elif item in _SOURCE_MODELS and out.startswith("sources"):
            continue  # the discriminator's branch name is noise for the user
        else:
            out += f".{item}" if out else str(item)
    return out or "(top level)"


def format_validation_error(exc: ValidationError, origin: str, doc: dict[str, Any]) -> str:
    """One line: the first offending field, what is wrong, and the file. Never echoes a value."""
    err = exc.errors()[0]
    where = _describe_loc(tuple(err["loc"]), doc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag", "")
        msg = f"unknown kind '{tag}' (installed: {', '.join(_SOURCE_MODELS) or 'none'})"
    elif err["type"] == "extra_forbidden":
        msg = "unknown setting"
    more = len(exc.errors()) - 1
    suffix = f" (+{more} more)" if more else ""
    return f"invalid config in {origin}: {where}: {msg}{suffix}"


def config_path(cli_path: Path | None, env: Mapping[str, str] | None = None) -> Path:
    """The file to read: ``--config``, else ``DESKPULSE_CONFIG``, else ``./deskpulse.toml``."""
    env = os.environ if env is None else env
    if cli_path is not None:
        return cli_path
    if env.get(f"{ENV_PREFIX}CONFIG"):
        return Path(env[f"{ENV_PREFIX}CONFIG"])
    return DEFAULT_CONFIG


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    required: bool = True,
    overrides: dict[str, Any] | None = None,
    source_models: Mapping[str, type[SourceBase]] | None = None,
    severity_maps: Mapping[str, Mapping[str, int]] | None = None,
) -> Settings:
    """Read, merge and validate the configuration; raise :class:`ConfigError` with one line on failure.

    ``source_models``: the kinds a ``[[sources]]`` entry may have (kind -> settings model), normally the
    installed connector plugins' models, handed in by sync (see :func:`use_source_models`).
    ``severity_maps``: the default ``[kpi] severity_map`` (kind -> priority -> severity), normally what the
    installed plugins declare, handed in by sync (see :func:`use_severity_defaults`).
    """
    if source_models is not None:
        use_source_models(source_models)
    if severity_maps is not None:
        use_severity_defaults(severity_maps)
    env = os.environ if env is None else env
    target = config_path(path, env)
    doc: dict[str, Any] = {}
    if target.exists():
        try:
            doc = tomllib.loads(target.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid config in {target}: not valid TOML ({exc})") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config {target}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:  # e.g. saved as Latin-1: TOML is UTF-8 by definition
            raise ConfigError(f"invalid config in {target}: not UTF-8 text (byte {exc.start}); save it as "
                              "UTF-8") from None
    elif required and (path is not None or env.get(f"{ENV_PREFIX}CONFIG")):
        raise ConfigError(f"config file {target} does not exist")
    elif required:
        raise ConfigError(
            f"no config file at {target}: copy config/deskpulse.example.toml there, "
            "pass --config PATH, or try 'deskpulse demo'"
        )
    overlay_env(doc, env)
    if overrides:
        doc.update(overrides)
    try:
        return Settings(**doc)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(target), doc)) from None
