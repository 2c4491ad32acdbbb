"""What can be set, and how a value is found: flag > environment > profile > [default] > built-in.

Secrets are never taken from a flag value or from the config file: only from the environment, or from
a file named by the matching ``*-file`` setting (``--ui-token-file``, ``BULKSTATUS_API_PASSWORD_FILE``...).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bulkstatus.errors import ConfigError
from bulkstatus.run.brakes import FailureLimit, parse_failure_limit

Kind = Literal["str", "int", "float", "bool", "rate", "count", "failures", "urls", "columns", "identifier"]


@dataclass(frozen=True, slots=True)
class Spec:
    name: str  # the long flag name and config-file key, e.g. "base-url"
    kind: Kind = "str"
    default: Any = None
    help: str = ""
    secret: bool = False  # environment or *-file only; never printed
    own_flag: bool = False  # the flag is declared by each command that takes it, not in the settings group
    per_session: bool = False  # a resume does not take it from the run's settings, only from its own sources

    @property
    def env(self) -> str:
        return "BULKSTATUS_" + self.name.upper().replace("-", "_")

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")


SPECS: tuple[Spec, ...] = (
    Spec("base-url", help="gateway base URL, e.g. https://eu.api.capillarytech.com"),
    Spec("org-id", help="organisation id sent as X-CAP-API-AUTH-ORG-ID"),
    Spec("ui-token", secret=True, help="Intouch user JWT sent as X-CAP-UI-AUTH-TOKEN"),
    Spec("api-user", help="gateway Basic auth user (usually a till)"),
    Spec("api-password", secret=True, help="gateway Basic auth password"),
    Spec("oauth-key", help="gateway OAuth client key"),
    Spec("oauth-secret", secret=True, help="gateway OAuth client secret"),
    Spec("oauth-url", help="OAuth token URL (default {base-url}/v3/oauth/token/generate)"),
    Spec("till-id", help="entityInfo.tillId"),
    Spec("store-id", help="entityInfo.storeId"),
    Spec("zone-id", help="entityInfo.zoneId"),
    Spec("concept-id", help="entityInfo.conceptId"),
    Spec("intouch-host", help="hostname of the inner Intouch task, e.g. https://eu.api.capillarytech.com"),
    Spec("intouch-user", help="user for the inner task's Basic Authorization"),
    Spec("intouch-password", secret=True, help="password for the inner task's Basic Authorization"),
    Spec("intouch-authorization", secret=True, help="raw Authorization header value for the inner task"),
    Spec("source", default="INSTORE", help="queryParams.source"),
    Spec("account-id", default="", help="queryParams.accountId"),
    Spec("use-async", kind="bool", default=False, help="queryParams.use_async"),
    Spec("rate", kind="rate", default="10/s", help="pace: N/s, N/min, or 0 for unlimited"),
    Spec("concurrency", kind="int", default=8, help="requests in flight at most"),
    Spec("max-retries", kind="int", default=5, help="retries per row for transient failures"),
    Spec("timeout", kind="float", default=30.0, help="seconds to wait for one answer"),
    Spec("backoff", kind="float", default=1.0, help="first retry wait in seconds (doubles, capped, jittered)"),
    Spec("backoff-max", kind="float", default=60.0, help="longest wait between retries, seconds"),
    Spec("label", help="label for rows whose label cell is empty or column absent"),
    Spec("reason", help="reason for rows whose reason cell is empty or column absent"),
    Spec("labels", help="comma-separated list of allowed labels, e.g. Suspended,Active"),
    Spec("column", kind="columns", default={},
         help="the file's header for one of identifierName, identifierValue, label, reason, e.g. "
              'identifierValue="Mobile No" (repeatable; [columns] in the config file; in the variable, '
              "separated by ;)"),
    Spec("identifier-name", kind="identifier",
         help="identifierName for every row whose cell is empty or when the file has no such column, "
              "e.g. mobile for a list of mobile numbers"),
    Spec("encoding", help="input encoding (default: UTF-8, or UTF-16 when it has a BOM)"),
    Spec("delimiter", help="input delimiter (default: detected among , ; TAB)"),
    Spec("sheet", help="the sheet of an .xlsx, .xls or .ods input to read (default: the first)"),
    Spec("out", default="output", help="folder that receives run folders"),
    Spec("grace", kind="float", default=30.0, help="seconds in-flight requests may finish after Ctrl-C"),
    Spec("dry-run", kind="bool", default=False, own_flag=True, help="send nothing; write requests.jsonl"),
    Spec("sandbox", kind="bool", default=False, own_flag=True, help="run against the built-in simulator"),
    Spec("quiet", kind="bool", default=False, own_flag=True, help="no progress bar or progress lines"),
    Spec("report", kind="bool", default=True, own_flag=True,
         help="write report.html into the run folder when run, resume or track ends"),
    Spec("abort-after", kind="float", default=120.0,
         help="abort when most requests fail with retryable errors for this many seconds"),
    Spec("doubt-settle", kind="float", default=2.0,
         help="seconds to wait before looking up a request whose answer was lost"),
    Spec("maker-user-id",
         help="userId of the UI token's user (on any request it made); needed only when every answer of a run "
              "was lost, so that look-ups can tell its requests from others'"),
    Spec("pending-check", kind="bool", default=True,
         help="before sending, skip rows whose customer already has a pending request with the same label"),
    Spec("list-limit", kind="int", default=500,
         help="page size for the list endpoint (the API's maximum is not documented; 500 in the simulator)"),
    Spec("limit", kind="count", per_session=True,
         help="send at most N rows in this session; the rest is left unprocessed for `bulkstatus resume`"),
    Spec("max-failures", kind="failures",
         help="stop the run (exit 3) when more than N rows, or P%% of the rows answered (once 20 are), "
              "are refused by the API for reasons a retry will not fix"),
    Spec("notify", kind="urls", per_session=True,
         help="POST a JSON summary to this URL when the command ends (repeatable; in BULKSTATUS_NOTIFY, "
              "URLs separated by spaces)"),
    Spec("notify-timeout", kind="float", default=10.0,
         help="seconds for all attempts (at most 3) of one notification"),
)
SPEC_BY_NAME: dict[str, Spec] = {s.name: s for s in SPECS}
SECRET_NAMES = tuple(s.name for s in SPECS if s.secret)


@dataclass(frozen=True, slots=True)
class Rate:
    """A pace of ``count`` request starts per ``period`` seconds; count 0 means unlimited."""

    count: int
    period: float
    text: str

    @property
    def unlimited(self) -> bool:
        return self.count == 0

    @property
    def per_second(self) -> float:
        return self.count / self.period if self.count else float("inf")


_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}


def parse_rate(text: str) -> Rate:
    """Parse ``10/s``, ``600/min`` or ``0``."""
    raw = str(text).strip().lower()
    if raw == "0":
        return Rate(0, 1.0, "0")
    count_text, _, unit = raw.partition("/")
    if not unit:
        unit = "s"
    try:
        count = int(count_text)
    except ValueError:
        count = -1
    if count < 0 or unit not in _PERIODS:
        raise ConfigError(f"--rate {text!r} is not a pace: use N/s, N/min (e.g. 10/s, 100/min) or 0 for unlimited")
    return Rate(count, _PERIODS[unit], f"{count}/{'s' if _PERIODS[unit] == 1.0 else 'min'}")


@dataclass(frozen=True)
class Settings:
    """Every resolved setting; secrets included, so never print or serialise this directly."""

    values: Mapping[str, Any]
    origins: Mapping[str, str] = field(default_factory=dict)  # name -> "flag" | "env" | "profile" | ...

    def __getattr__(self, attr: str) -> Any:
        name = attr.replace("_", "-")
        if name in SPEC_BY_NAME:
            return self.values.get(name)
        raise AttributeError(attr)

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def public(self) -> dict[str, Any]:
        """The settings with every secret left out (for summary.json and logs)."""
        out: dict[str, Any] = {}
        for spec in SPECS:
            value = self.values.get(spec.name)
            if spec.kind == "urls" and value:  # a webhook's path may hold its token: scheme://host only
                from bulkstatus.notify import redact_url

                out[spec.name] = [redact_url(url) for url in value]
            elif not spec.secret:
                out[spec.name] = value.text if isinstance(value, Rate | FailureLimit) else value
            elif spec.name + "-file" in self.values:  # a secret is left out; the file it came from is not
                out[spec.name + "-file"] = self.values[spec.name + "-file"]
        return out

    def secrets(self) -> list[str]:
        """The secret values in use, so that outputs can be checked or scrubbed."""
        return [str(self.values[n]) for n in SECRET_NAMES if self.values.get(n)]

    def replace(self, **changes: Any) -> Settings:
        values = dict(self.values)
        origins = dict(self.origins)
        for attr, value in changes.items():
            name = attr.replace("_", "-")
            values[name] = value
            origins[name] = "override"
        return Settings(values, origins)


def _convert(spec: Spec, value: Any, origin: str) -> Any:
    where = {"flag": f"--{spec.name}", "env": spec.env}.get(origin, f"{spec.name} in the config file")
    try:
        if spec.kind in ("int", "count"):  # a count (--limit) starts at 1
            number = int(value)
            if number < (1 if spec.kind == "count" else 0):
                raise ValueError
            return number
        if spec.kind == "float":
            fnum = float(value)
            if fnum < 0:
                raise ValueError
            return fnum
        if spec.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if spec.kind == "rate":
            return parse_rate(str(value))
        if spec.kind == "failures":
            return parse_failure_limit(str(value), where)
        if spec.kind == "urls":
            from bulkstatus.notify import parse_urls

            return parse_urls(value, where)
        if spec.kind in ("columns", "identifier"):
            from bulkstatus.input.columns import parse_columns, parse_identifier_name

            if spec.kind == "identifier":
                return parse_identifier_name(value, where)
            return parse_columns(value, "[columns] in the config file" if origin in ("profile", "config") else where)
    except ValueError:
        kind = {"int": "a whole number >= 0", "float": "a number >= 0", "bool": "true or false",
                "count": "a whole number >= 1"}[spec.kind]
        raise ConfigError(f"{where} must be {kind}, not {value!r}") from None
    return str(value)


def load_config_file(path: Path | None, explicit: bool) -> dict[str, Any]:
    """Read the TOML config file; a missing default file is fine, a missing --config file is not."""
    if path is None:
        return {}
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {str(path)!r} does not exist: check the --config path")
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML ({exc}): fix the file") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({exc.strerror})") from None


def _table(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            continue
        name = key.replace("_", "-")
        spec = SPEC_BY_NAME.get(name)
        base = name.removesuffix("-file")
        if spec is None and not (name.endswith("-file") and base in SECRET_NAMES):
            raise ConfigError(f"unknown key {key!r} in {where} of the config file: see `bulkstatus run --help`")
        if spec is not None and spec.secret:
            raise ConfigError(
                f"{key} must not be written in the config file: set {spec.env} in the environment "
                f"or name a file with {key}-file"
            )
        out[name] = value
    return out


def resolve(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    config_explicit: bool = False,
    profile: str | None = None,
) -> Settings:
    """Merge the four sources; ``flags`` holds only the flags the user gave (value not None)."""
    env = os.environ if environ is None else environ
    data = load_config_file(config_path, config_explicit)
    default_table = _table(data.get("default", {}), "[default]")
    profile_table: dict[str, Any] = {}
    if profile:
        profiles = data.get("profiles", {})
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"profile {profile!r} is not in the config file (profiles found: {known})")
        profile_table = _table(profiles[profile], f"[profiles.{profile}]")
        if isinstance(profiles[profile].get("columns"), dict):
            profile_table["column"] = profiles[profile]["columns"]
    if isinstance(data.get("columns"), dict):  # the [columns] table: the file's headers for our fields
        default_table["column"] = data["columns"]

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for spec in SPECS:
        value: Any = None
        origin = "default"
        if spec.secret:
            value, origin, path = _secret(spec, flags, env, profile_table, default_table)
            if path is not None:
                values[spec.name + "-file"] = str(path)
        else:
            for source, table in (("flag", flags), ("env", env), ("profile", profile_table),
                                  ("config", default_table)):
                key = spec.env if source == "env" else spec.name
                if table.get(key) not in (None, ""):
                    value, origin = table[key], source
                    break
        if value is None:
            value = spec.default
        values[spec.name] = _convert(spec, value, origin) if value is not None else None
        origins[spec.name] = origin
    return Settings(values, origins)


def _secret(
    spec: Spec,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    profile_table: Mapping[str, Any],
    default_table: Mapping[str, Any],
) -> tuple[str | None, str, Path | None]:
    """A secret's value: from a *-file setting (flag > env > profile > default) or its variable."""
    file_name = spec.name + "-file"
    file_env = spec.env + "_FILE"
    for source, table, key in (
        ("flag", flags, file_name),
        ("env", env, file_env),
        ("profile", profile_table, file_name),
        ("config", default_table, file_name),
    ):
        path = table.get(key)
        if path:
            where = f"--{file_name}" if source == "flag" else key
            file_path = Path(str(path)).expanduser()
            return read_secret_file(file_path, where), "file", file_path
    if env.get(spec.env):
        return env[spec.env], "env", None
    return None, "default", None


def read_secret_file(path: Path, where: str) -> str:
    """A secret file holds the value alone; surrounding white space (a final newline) is dropped."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        # The value is not shown: a secret typed where its file's path belongs would be echoed.
        raise ConfigError(f"{where}: no such file (its name is not shown, in case a secret was typed in its "
                          "place): give the path of the file that holds the secret") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {str(path)!r} ({exc.strerror}): check the path") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {str(path)!r} is not UTF-8 text") from None
    if not text:
        raise ConfigError(f"{where}: {str(path)!r} is empty: put the secret in it")
    return text
