"""The ``updater-stats`` command: ``serve`` the endpoint, ``export`` stored events, ``copy``
them to another store or ``import`` an export, ``forget`` a device or a user, ``purge`` old events.

Needs click (``pip install 'updater-stats[server]'``); ``serve`` also needs uvicorn.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from copy import deepcopy
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
import click

from ._collector import DEFAULT_DEADLINE, Collector
from ._header_deadline import http_protocol
from ._lifecycle import forget_events, purge_events
from ._models import WIRE_KEYS, StoredEvent
from ._policy import Policy
from ._prometheus import MULTIPROC_ENV_VAR
from ._serving import (
    SERVER_MOST,
    SQLITE_MOST,
    WorkerCount,
    default_workers,
    usable_core_count,
)
from ._settings import (
    DASHBOARD_ENV_VAR,
    DEADLINE_ENV_VAR,
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_STORAGE_URL,
    HEADER_TIMEOUT_ENV_VAR,
    STORAGE_ENV_VAR,
    TOKEN_ENV_VAR,
    AppSettings,
    worker_environ,
)
from ._transfer import (
    DEFAULT_BATCH_SIZE,
    EXPORT_FIELDS,
    CopyResult,
    copy_events,
    describe,
    import_json_lines,
    json_line,
)
from .backends import StorageBackend, SupportsEvents, backend_from_url, redacted_url
from .exceptions import BackendError, ConfigurationError
from .privacy import SECRET_ENV_VAR, Privacy, normalize_device_id
from .reports import counted_version

if TYPE_CHECKING:
    from .reports import ReportQuery, Reports

__all__ = ["EXPORT_FIELDS", "cli", "main"]

_LOG_LEVELS = ["critical", "error", "warning", "info", "debug", "trace"]
_RELATIVE = re.compile(r"(\d+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_PROGRESS_EVERY = 1000

storage_option = click.option(
    "--storage",
    default=DEFAULT_STORAGE_URL,
    envvar=STORAGE_ENV_VAR,
    show_default=True,
    show_envvar=True,
    help="Storage URL: sqlite:///file.sqlite3, sqlite:////abs/path.sqlite3, postgresql://…, "
    "clickhouse://…, chdb:///folder (ClickHouse in-process), memory://",
)
# What `report` and `devices` print: a table for people, JSON or CSV for programs.
table_format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
# The filters and the write size `export`, `copy` and `import` share.
app_option = click.option("--app", "app_id", metavar="ID", help="Only this app_id.")
since_option = click.option(
    "--since", metavar="DATE", help="Received at or after: 2026-11-01, 2026-11-01T12:00Z, 7d, 12h."
)
batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(1),
    help=f"Events per write.  [default: {DEFAULT_BATCH_SIZE}, or the target's larger batch size"
    " (ClickHouse: 10000)]",
)


def _version() -> str:
    from importlib.metadata import version  # noqa: PLC0415 - only for --version.

    return version("updater-stats")


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Run 'updater-stats COMMAND --help' for a command's options and examples.",
)
@click.version_option(version=_version(), prog_name="updater-stats")
def cli() -> None:
    """A self-hosted stats endpoint for Capacitor live updates (capacitor-updater)."""


@cli.command(
    epilog="""\b
Examples:
  updater-stats serve
  updater-stats serve --storage sqlite:////var/lib/updater-stats/stats.sqlite3 --port 9000
  updater-stats serve --host 0.0.0.0 --workers 4 --path /api/stats
  updater-stats serve --allow-app com.example.app --allow-app com.example.beta
  updater-stats serve --workers 4 --metrics
  UPDATER_STATS_DASHBOARD_TOKEN=$(cat token) updater-stats serve --dashboard

\b
Then set the plugin's statsUrl (capacitor.config.json, plugins.CapacitorUpdater)
to http://HOST:PORT/stats.""",
)
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--path", default="/stats", show_default=True, help="The stats path devices POST to.")
@click.option(
    "--workers",
    type=click.IntRange(1),
    help=f"Worker processes.  [default: one per usable core ({usable_core_count()} here), at "
    f"most {SQLITE_MOST} on a SQLite file, {SERVER_MOST} on a database server; 1 on memory://, "
    "SQLite in memory, chdb: and an installed package's scheme]",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(_LOG_LEVELS, False)
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="One log line per request answered (refused requests are logged either way).",
)
@click.option(
    "--allow-app",
    "allowed_apps",
    metavar="ID",
    multiple=True,
    help="Accept events of this app_id only (repeat for several); default: any app.",
)
@click.option(
    "--metrics",
    is_flag=True,
    help="Serve the intake counters as Prometheus text on GET /metrics (public, like /stats).",
)
@click.option(
    "--max-bytes-in-flight",
    metavar="BYTES",
    type=click.IntRange(1),
    default=DEFAULT_BYTES_IN_FLIGHT,
    show_default=True,
    help="Request bodies over 64 KiB held at once by the whole server, shared equally by its "
    "workers; bounds memory under a flood.",
)
@click.option(
    "--deadline",
    metavar="SECONDS",
    type=click.FloatRange(0, 60, min_open=True),
    default=DEFAULT_DEADLINE,
    envvar=DEADLINE_ENV_VAR,
    show_default=True,
    show_envvar=True,
    help="Answer every request within this many seconds of reading its body: past it, 503 "
    "(devices give up after 10 s).",
)
@click.option(
    "--header-timeout",
    metavar="SECONDS",
    type=click.FloatRange(0, 3600, min_open=True),
    default=DEFAULT_HEADER_TIMEOUT,
    envvar=HEADER_TIMEOUT_ENV_VAR,
    show_default=True,
    show_envvar=True,
    help="Close a connection that has not sent a request's headers this many seconds after it "
    "opened or got its last answer (slow or idle clients holding sockets).",
)
@click.option(
    "--dashboard",
    is_flag=True,
    help="Also serve the read-only web dashboard at /dashboard (needs a token, see below).",
)
@click.option(
    "--dashboard-token-file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="A file holding the dashboard token; default: UPDATER_STATS_DASHBOARD_TOKEN.",
)
def serve(
    storage: str,
    host: str,
    port: int,
    path: str,
    workers: int | None,
    log_level: str,
    access_log: bool,
    allowed_apps: tuple[str, ...],
    metrics: bool,
    max_bytes_in_flight: int,
    deadline: float,
    header_timeout: float,
    dashboard: bool,
    dashboard_token_file: str | None,
) -> None:
    """Run the stats endpoint with uvicorn.

    POST on the path stores events; GET on it is a health check; GET /ready
    says whether storage answers. SIGTERM or Ctrl-C stops the server after the
    requests in flight are answered, and closes storage.
    """
    try:
        import uvicorn  # noqa: PLC0415 - an optional extra.
    except ImportError:
        raise click.ClickException(
            "serve needs uvicorn: pip install 'updater-stats[server]'"
        ) from None
    if metrics and importlib.util.find_spec("prometheus_client") is None:
        raise click.ClickException(
            "--metrics needs prometheus-client: pip install 'updater-stats[metrics]'"
        )
    try:
        # Checked here, so that a bad value (or secret) stops the command, not every worker.
        settings = AppSettings(
            storage=storage,
            path=path,
            policy=Policy(allowed_app_ids=allowed_apps or None),
            privacy=Privacy.from_env(),
            metrics=metrics,
            max_bytes_in_flight=max_bytes_in_flight,
            deadline=deadline,
        )
    except ConfigurationError as error:
        raise click.ClickException(error.message) from None
    if workers is not None and workers > 1 and storage.lower().startswith("chdb:"):
        raise click.ClickException(
            "the in-process ClickHouse engine (chdb://) serves one process: use --workers 1, "
            "or a ClickHouse server (clickhouse://)"
        )
    _check_storage(storage)
    chosen = (
        default_workers(storage) if workers is None else WorkerCount(workers, "set by --workers")
    )
    workers = chosen.count
    # The budget bounds the server's memory, whatever the number of workers (one per core by
    # default): each worker holds its share. A body over a share is still let in when its
    # worker holds nothing else (`BodyBudget`).
    settings = attrs.evolve(settings, max_bytes_in_flight=max(1, max_bytes_in_flight // workers))
    factory = "updater_stats._serving:create_worker_app"
    if dashboard:
        factory = _dashboard_env(dashboard_token_file)
    # Every worker process builds its app from these, through the factory's
    # `AppSettings.from_env`: the settings above, as it reads them back.
    os.environ.update(worker_environ(settings))
    os.environ[HEADER_TIMEOUT_ENV_VAR] = repr(header_timeout)  # read by each worker's loop
    own_metrics_dir = None
    if metrics and workers > 1 and not os.environ.get(MULTIPROC_ENV_VAR):
        # prometheus-client's multiprocess mode: each worker writes its counters to files in
        # this directory and a scrape adds them all up. Set before the workers start, fresh
        # for every run, as its documentation asks.
        own_metrics_dir = tempfile.mkdtemp(prefix="updater-stats-metrics-")
        os.environ[MULTIPROC_ENV_VAR] = own_metrics_dir
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(
        f"updater-stats {_version()}: devices POST to http://{shown_host}:{port}/"
        f"{path.strip('/')} (storage: {redacted_url(storage)})",
        err=True,
    )
    click.echo(str(chosen), err=True)
    if dashboard:
        click.echo(f"dashboard: http://{shown_host}:{port}/dashboard/", err=True)
    try:
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level.lower(),
            log_config=_log_config(log_level),
            access_log=access_log,
            lifespan="on",
            timeout_graceful_shutdown=30,
            # uvicorn's own protocol, httptools or h11, that closes connections whose headers
            # do not come in time (see _header_deadline).
            http=http_protocol(),
        )
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, plus the library's loggers on its stderr handler at *level*.

    Without a handler of their own, ``updater_stats`` lines below WARNING (why events are
    refused, at INFO) would go nowhere; the intake throttles them itself (`LogThrottle`).
    """
    from uvicorn.config import LOGGING_CONFIG  # noqa: PLC0415 - serve only, uvicorn checked.

    config = deepcopy(LOGGING_CONFIG)
    config["loggers"]["updater_stats"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def _dashboard_env(token_file: str | None) -> str:
    """Check the dashboard can start, hand its token to the workers; return their factory."""
    if importlib.util.find_spec("jinja2") is None:
        raise click.ClickException(
            "--dashboard needs Jinja2: pip install 'updater-stats[dashboard]'"
        )
    from .dashboard import read_token  # noqa: PLC0415

    try:
        token = read_token(token_file=token_file)
    except ConfigurationError as error:
        raise click.ClickException(error.message) from None
    os.environ[TOKEN_ENV_VAR] = token
    os.environ[DASHBOARD_ENV_VAR] = "1"
    return "updater_stats._serving:create_dashboard_worker_app"


def _check_storage(storage: str) -> None:
    """Fail before binding a port when the URL is wrong; warn when storage does not answer yet."""
    try:
        collector = Collector.from_url(storage)
    except ConfigurationError as error:
        raise click.ClickException(error.message) from None
    try:
        collector.ping()
    except BackendError as error:
        click.echo(
            f"warning: storage does not answer yet ({error.message}); "
            "requests get 503 until it does",
            err=True,
        )
    finally:
        collector.close()


def _age(text: str) -> dt.timedelta | None:
    """``7d``, ``12h`` or ``30m`` as a duration; `None` for anything else."""
    match = _RELATIVE.fullmatch(text)
    if match is None:
        return None
    amount, unit = match.groups()
    return dt.timedelta(**{_UNITS[unit]: int(amount)})


def _parse_moment(
    value: str, hint: str, usage: str, *, ages: bool = True, zero_age: bool = True
) -> dt.datetime:
    """An aware moment from an ISO date or time (UTC when none is given), or an age ago.

    *ages* accepts ``7d`` / ``12h`` / ``30m`` as that long before now; *zero_age* also
    accepts ``0d``. *usage* completes the error message for *hint*, the option's name.
    """
    text = value.strip()
    age = _age(text) if ages else None
    if age is not None:
        if not zero_age:
            age = _parse_duration(text, hint)  # refuses 0d with its own message
        return dt.datetime.now(dt.timezone.utc) - age
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: {usage}", param_hint=hint) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _parse_since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    usage = "use a date (2026-11-01), a time (2026-11-01T12:00:00Z) or 7d / 12h / 30m"
    return _parse_moment(value, "--since", usage)


def _stderr_is_terminal() -> bool:
    """Whether a person watches stderr: only then does export show a running count."""
    return sys.stderr.isatty()


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


CSV_COLUMNS = (
    "received_at",
    "device_time",
    "action_known",
    *WIRE_KEYS.values(),
    "extras",
    "truncated",
)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _csv_row(stored: StoredEvent) -> list[Any]:
    event = stored.event
    values = {key: getattr(event, attribute) for attribute, key in WIRE_KEYS.items()}
    values["received_at"] = _iso(stored.received_at)
    values["device_time"] = _iso(stored.device_time)
    values["action_known"] = stored.action_known
    values["extras"] = dict(event.extras) if event.extras else None
    values["truncated"] = list(stored.truncated) if stored.truncated else None
    return [_csv_cell(values[column]) for column in CSV_COLUMNS]


@attrs.frozen(kw_only=True)
class _ExportFilter:
    """Which stored events ``export`` writes; `None` lets every value through."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    device_ids: frozenset[str] | None = None
    version: str | None = None

    def __call__(self, stored: StoredEvent) -> bool:
        if self.since is not None and stored.received_at < self.since:
            return False
        if self.until is not None and stored.received_at >= self.until:
            return False
        if self.device_ids is not None and stored.event.device_id not in self.device_ids:
            return False
        return self.version is None or counted_version(stored.event.version_name) == self.version


def _stored_device_ids(device_id: str) -> frozenset[str]:
    """What *device_id* may be stored as: itself, and its pseudonym when the environment
    asks for one (as ``forget`` and the dashboard's search do)."""
    try:
        privacy = Privacy.from_env()
    except ConfigurationError as error:
        raise click.ClickException(error.message) from None
    ids = {device_id, normalize_device_id(device_id)}
    if privacy is not None:
        ids.add(privacy.stored_device_id(device_id))
    return frozenset(ids)


def _events(
    storage: str, app_id: str | None, since: dt.datetime | None, keep: _ExportFilter | None = None
) -> Iterator[StoredEvent]:
    keep = keep or _ExportFilter(since=since)
    try:
        backend = backend_from_url(storage)
    except ConfigurationError as error:
        raise click.ClickException(error.message) from None
    if not isinstance(backend, SupportsEvents):
        backend.close()
        raise click.ClickException(f"{type(backend).__name__} cannot list its events")
    try:
        for stored in backend.events(app_id=app_id):
            if keep(stored):
                yield stored
    finally:
        backend.close()


@cli.command(
    epilog="""\b
Examples:
  updater-stats export > events.jsonl
  updater-stats export --app com.example.app --since 7d --format csv --output week.csv
  updater-stats export --storage sqlite:////var/lib/stats.sqlite3 --since 2026-11-01
  updater-stats export --app com.example.app --version 1.5.0 --since 2026-11-01 --until 2026-11-08
  updater-stats export --app com.example.app --device-id 9c2a06c2-7c6e-4f49-9a3c-6e1b1f1a2b3c

\b
A JSON line is the event as stored (wire field names, unknown fields
included) plus _received_at, _device_time, _action_known, _truncated (the
fields stored cut at a cap, usually none) and _key (the duplicate key):
'updater-stats import' reads it back exactly.""",
)
@storage_option
@app_option
@since_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
)
@click.option(
    "--output",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    help="Default: stdout.",
)
@click.option("--until", metavar="DATE", help="Received before: 2026-11-08, 2026-11-08T12:00Z.")
@click.option(
    "--device-id",
    metavar="ID",
    help="Only this device (hashed as the server does when pseudonymisation is on).",
)
@click.option(
    "--version",
    "version",
    metavar="V",
    help="Only events counted under this version (1.5.0 also takes 1.5.0:main.js).",
)
def export(
    storage: str,
    app_id: str | None,
    since: str | None,
    output_format: str,
    output: IO[str],
    until: str | None,
    device_id: str | None,
    version: str | None,
) -> None:
    """Stream every stored event, in storage order, without loading them all into memory."""
    since_moment = _parse_since(since)
    keep = _ExportFilter(
        since=since_moment,
        until=_parse_until(until),
        device_ids=None if device_id is None else _stored_device_ids(device_id),
        version=version,
    )
    progress = _stderr_is_terminal()
    count = 0
    writer = csv.writer(output, lineterminator="\n") if output_format == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    try:
        for stored in _events(storage, app_id, since_moment, keep):
            if writer is not None:
                writer.writerow(_csv_row(stored))
            else:
                output.write(json_line(stored) + "\n")
            count += 1
            if progress and count % _PROGRESS_EVERY == 0:
                click.echo(f"\rexported {count} events", err=True, nl=False)
    except BackendError as error:
        raise click.ClickException(error.message) from None
    if progress:
        click.echo(f"\rexported {count} events", err=True)


# --- moving stores: copy and import ---------------------------------------------------------


class _Progress:
    """A running line on stderr: events done, their rate and, when it can tell, the time left.

    *fraction* says which share of the work *done* events are, or `None` when unknown.
    """

    #: Seconds between two updates of the line.
    EVERY = 0.5

    def __init__(self, verb: str, fraction: Callable[[int], float | None]) -> None:
        self._verb = verb
        self._fraction = fraction
        self._started = time.monotonic()
        self._shown = 0.0
        self._width = 0

    def restart(self) -> None:
        """Count the time from now on."""
        self._started = time.monotonic()

    def __call__(self, done: int, *, last: bool = False) -> None:
        now = time.monotonic()
        if not last and now - self._shown < self.EVERY:  # a terminal line, not a flood
            return
        self._shown = now
        elapsed = max(now - self._started, 1e-9)
        line = f"{self._verb} {done} events, {done / elapsed:,.0f} events/s"
        share = self._fraction(done)
        if last:
            line += f", {_clock(elapsed)} in all"
        elif share is not None and share > 0:
            line += f", {share:.0%}, ETA {_clock(elapsed * (1 - min(share, 1.0)) / share)}"
        self.say(line, nl=last)

    def say(self, line: str, *, nl: bool = False) -> None:
        """Show *line* in place of the previous one."""
        # Spaces wipe what a longer previous line left.
        click.echo(f"\r{line.ljust(self._width)}", err=True, nl=nl)
        self._width = len(line)


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _open_backend(url: str) -> StorageBackend:
    try:
        return backend_from_url(url)
    except ConfigurationError as error:
        raise click.ClickException(error.message) from None


def _store(
    run: Callable[[Callable[[int], None] | None], CopyResult],
    progress: _Progress | None,
    verb: str,
) -> None:
    """Run a copy or an import, turning its errors into messages; print what it did."""
    try:
        result = run(progress)
    except (BackendError, ConfigurationError) as error:
        raise click.ClickException(error.message) from None
    except (TypeError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if progress is not None:
        progress(result.total, last=True)
    click.echo(describe(result, verb))


DEVICE_COLUMNS = (
    "device_id",
    "bundle",
    "platform",
    "os_version",
    "native_version",
    "plugin_version",
    "channel",
    "custom_id",
    "first_seen",
    "last_seen",
    "events",
)


def _device_record(summary: Any) -> dict[str, Any]:
    record = {column: getattr(summary, column) for column in DEVICE_COLUMNS}
    record["first_seen"] = _iso(summary.first_seen)
    record["last_seen"] = _iso(summary.last_seen)
    return record


def _cell_text(value: Any) -> str:
    """*value* on one line: control and direction characters as escapes, never as themselves."""
    text = "" if value is None else str(value)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _print_device_table(records: list[dict[str, Any]], output: IO[str]) -> None:
    """Columns as wide as their values: nothing is cut, whatever the terminal's width."""
    shown = [[_cell_text(record[c]) for c in DEVICE_COLUMNS] for record in records]
    widths = [max([len(c), *(len(row[i]) for row in shown)]) for i, c in enumerate(DEVICE_COLUMNS)]
    output.write(
        "  ".join(c.ljust(w) for c, w in zip(DEVICE_COLUMNS, widths, strict=True)).rstrip()
    )
    output.write("\n")
    for row in shown:
        output.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        output.write("\n")


@cli.command(
    epilog="""\b
Examples:
  updater-stats copy --from sqlite:///stats.sqlite3 --to postgresql://stats@db/app
  updater-stats copy --from sqlite:///stats.sqlite3 --to clickhouse://ch:8123/stats --since 90d
  updater-stats copy --from postgresql://db/app --to sqlite:///app.sqlite3 --app com.example.app

\b
Every field is kept, the duplicate key included: a device re-sending an old
batch to the new store is recognised. Run it again, or after it was stopped,
and only what is missing is stored. A server may write to the target
meanwhile. On a terminal it counts the events first, to show the time left.""",
)
@click.option("--from", "source_url", required=True, metavar="URL", help="The store to read.")
@click.option("--to", "target_url", required=True, metavar="URL", help="The store to write.")
@app_option
@since_option
@batch_size_option
def copy(
    source_url: str,
    target_url: str,
    app_id: str | None,
    since: str | None,
    batch_size: int | None,
) -> None:
    """Copy every stored event from one store to another (any pair of backends)."""
    since_moment = _parse_since(since)
    if source_url == target_url:
        raise click.BadParameter("--from and --to name the same store", param_hint="--to")
    source = _open_backend(source_url)
    if not isinstance(source, SupportsEvents):
        source.close()
        raise click.ClickException(f"{type(source).__name__} cannot list its events")
    try:
        target = _open_backend(target_url)
    except click.ClickException:
        source.close()
        raise
    try:
        progress = None
        if _stderr_is_terminal():
            progress = _Progress("copied", lambda done: done / total if total else None)
            progress.say("counting the events to copy...")
            try:
                total = sum(
                    1
                    for stored in source.events(app_id=app_id)
                    if since_moment is None or stored.received_at >= since_moment
                )
            except BackendError as error:
                raise click.ClickException(error.message) from None
            progress.restart()
        _store(
            lambda report: copy_events(
                source,
                target,
                app_id=app_id,
                since=since_moment,
                batch_size=batch_size,
                progress=report,
            ),
            progress,
            "copied",
        )
    finally:
        source.close()
        target.close()


@cli.command(
    "import",
    epilog="""\b
Examples:
  updater-stats export > backup.jsonl
  updater-stats import backup.jsonl --storage postgresql://stats@db/app
  zcat backup.jsonl.gz | updater-stats import - --storage sqlite:///restored.sqlite3

\b
Reads what 'updater-stats export --format jsonl' wrote, exactly: receive
times, fields cut and duplicate keys included. Run it again, or after it was
stopped, and only what is missing is stored; a bad line stops it, naming the
line, with the lines before it stored.""",
)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@storage_option
@batch_size_option
def import_(file: str, storage: str, batch_size: int | None) -> None:
    """Store the events of an export (JSON lines) into a store; FILE may be - for stdin."""
    try:
        stream: IO[bytes] = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror}") from None
    with contextlib.ExitStack() as stack:
        if stream is not sys.stdin.buffer:
            stack.callback(stream.close)
        target = _open_backend(storage)
        stack.callback(target.close)
        progress = None
        if _stderr_is_terminal():
            size = _file_size(stream)
            progress = _Progress("imported", lambda _done: stream.tell() / size if size else None)
        _store(
            lambda report: import_json_lines(
                stream, target, batch_size=batch_size, progress=report
            ),
            progress,
            "imported",
        )


def _file_size(stream: IO[bytes]) -> int | None:
    """The size of a regular file, or `None` for a pipe or a terminal."""
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


@cli.command(
    epilog="""\b
Examples:
  updater-stats devices --app com.example.app
  updater-stats devices --app com.example.app --search user-42
  updater-stats devices --app com.example.app --after 3f0c... --limit 500 --format csv

\b
--search matches device_id or custom_id exactly; with pseudonymisation on
(UPDATER_STATS_PSEUDONYM_SECRET), what is typed is hashed as the server does.
Without --search, devices are listed by device_id, a page at a time: pass the
last one shown to --after for the next page.""",
)
@storage_option
@click.option("--app", "app_id", required=True, metavar="ID", help="The app_id.")
@click.option("--search", metavar="ID", help="A device_id or custom_id.")
@click.option("--after", metavar="ID", help="List the devices after this device_id.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="Devices."
)
@table_format_option
def devices(
    storage: str,
    app_id: str,
    search: str | None,
    after: str | None,
    limit: int,
    output_format: str,
) -> None:
    """Find devices, or list them: each with its current bundle, platform, OS, native and plugin
    versions, channel, custom_id, first and last seen (receive time) and events stored."""
    from ._inventory import DashboardData  # noqa: PLC0415 - only this command needs it

    try:
        privacy = Privacy.from_env()
        data = DashboardData.open(storage, privacy=privacy)
    except (ConfigurationError, BackendError) as error:
        raise click.ClickException(error.message) from None
    try:
        if search is not None:
            rows = data.search_devices(app_id, search, limit=limit)
        else:
            rows = data.list_devices(app_id, after=after, limit=limit)
        summaries = [data.device(app_id, row.device_id) for row in rows]
    except BackendError as error:
        raise click.ClickException(error.message) from None
    finally:
        data.close()
    records = [_device_record(s) for s in summaries if s is not None]
    output = sys.stdout
    if output_format == "json":
        for record in records:
            output.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif output_format == "csv":
        writer = csv.writer(output, lineterminator="\n")
        writer.writerow(DEVICE_COLUMNS)
        writer.writerows([_csv_cell(r[c]) for c in DEVICE_COLUMNS] for r in records)
    else:
        _print_device_table(records, output)


# --- erasure and retention ------------------------------------------------------------------


def _lifecycle_collector(storage: str) -> Collector:
    """A collector over *storage*, hashing ids as the server does (the same environment)."""
    try:
        return Collector.from_url(storage, privacy=Privacy.from_env())
    except ConfigurationError as error:
        raise click.ClickException(error.message) from None


@cli.command(
    epilog=f"""\b
Examples:
  updater-stats forget --device-id 0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d10
  updater-stats forget --custom-id user-42 --storage postgresql://stats@db/app
  updater-stats forget --custom-id user-42 --app com.example.app

\b
Give the ids as the app sends them. When the server pseudonymises ids, run
this with the same {SECRET_ENV_VAR}: the pseudonyms are erased
too, and so are events stored before pseudonymisation was turned on.""",
)
@storage_option
@click.option(
    "--device-id", "device_ids", metavar="ID", multiple=True, help="A device_id (repeatable)."
)
@click.option(
    "--custom-id", "custom_ids", metavar="ID", multiple=True, help="A custom_id (repeatable)."
)
@click.option("--app", "app_id", metavar="ID", help="Only events of this app_id; default: all.")
def forget(
    storage: str, device_ids: tuple[str, ...], custom_ids: tuple[str, ...], app_id: str | None
) -> None:
    """Erase every stored event of a device or a user (a right-to-erasure request)."""
    if not device_ids and not custom_ids:
        raise click.UsageError("give at least one --device-id or --custom-id")
    if "" in device_ids or "" in custom_ids:
        raise click.BadParameter("an id must not be empty", param_hint="--device-id/--custom-id")
    collector = _lifecycle_collector(storage)
    deleted = 0
    privacy = collector.privacy
    try:
        for device_id in device_ids:
            deleted += forget_events(
                collector.backend, device_id=device_id, privacy=privacy, app_id=app_id
            )
        for custom_id in custom_ids:
            deleted += forget_events(
                collector.backend, custom_id=custom_id, privacy=privacy, app_id=app_id
            )
    except (ConfigurationError, BackendError) as error:
        raise click.ClickException(error.message) from None
    finally:
        collector.close()
    click.echo(f"deleted {deleted} events")
    if deleted == 0 and collector.privacy is None:
        click.echo(
            f"note: {SECRET_ENV_VAR} is not set; if the server pseudonymises ids, set it here too",
            err=True,
        )


@cli.command(
    epilog="""\b
Examples:
  updater-stats purge --older-than 90d
  updater-stats purge --older-than 90d --dry-run
  updater-stats purge --older-than 30d --app com.example.beta
  updater-stats purge --older-than 2026-01-01 --storage sqlite:////var/lib/stats.sqlite3

\b
Run it daily (cron, a systemd timer, a Kubernetes CronJob) to keep a retention
period. Ages count from when the server received each event. A date in the
future would delete every event stored so far: it is refused without --yes.""",
)
@storage_option
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Delete events received before this: an age (90d, 12h, 30m) or a date.",
)
@click.option("--app", "app_id", metavar="ID", help="Only events of this app_id; default: all.")
@click.option(
    "--dry-run", is_flag=True, help="Count the events that would be deleted; delete nothing."
)
@click.option("--yes", is_flag=True, help="Allow a cut-off in the future (deletes everything).")
def purge(storage: str, older_than: str, app_id: str | None, dry_run: bool, yes: bool) -> None:
    """Delete stored events older than a retention period."""
    # An age of zero would purge everything: refused, as _parse_duration refuses it.
    usage = "use an age (90d, 12h, 30m) or a date (2026-01-01)"
    cutoff = _parse_moment(older_than, "--older-than", usage, zero_age=False)
    if cutoff > dt.datetime.now(dt.timezone.utc) and not yes and not dry_run:
        raise click.ClickException(
            f"the cut-off {_iso(cutoff)} is in the future: every event stored so far would be "
            "deleted; add --yes if that is what you want"
        )
    scope = "" if app_id is None else f" of {app_id}"
    collector = _lifecycle_collector(storage)
    try:
        if dry_run:
            count = sum(
                1
                for stored in _stored_events(collector.backend, app_id)
                if stored.received_at < cutoff
            )
            click.echo(f"would delete {count} events{scope} received before {_iso(cutoff)}")
            return
        deleted = purge_events(collector.backend, older_than=cutoff, app_id=app_id)
    except (ConfigurationError, BackendError) as error:
        raise click.ClickException(error.message) from None
    finally:
        collector.close()
    click.echo(f"deleted {deleted} events{scope} received before {_iso(cutoff)}")


def _stored_events(backend: object, app_id: str | None) -> Iterator[StoredEvent]:
    """The backend's stored events, for counting; a `ConfigurationError` if it cannot list them."""
    if not isinstance(backend, SupportsEvents):
        raise ConfigurationError(
            f"{type(backend).__name__} cannot list its events, so --dry-run cannot count them",
            code="unsupported_operation",
        )
    return backend.events(app_id=app_id)


# --- reports and release health -------------------------------------------------------------

_GATE_ERROR = 4
_GATE_NO_DATA = 5


class _GateError(click.ClickException):
    """The gate could not decide: exit 4, so no failure to run reads as a verdict."""

    exit_code = _GATE_ERROR


class _GateUsageError(click.UsageError):
    exit_code = _GATE_ERROR


class _GateCommand(click.Command):
    """Usage errors exit 4 too: click's usual 2 would read as "insufficient data"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise _GateUsageError(error.format_message(), error.ctx) from None


def _parse_duration(value: str, hint: str) -> dt.timedelta:
    delta = _age(value.strip())
    if delta is None:
        raise click.BadParameter(f"{value!r}: use 7d, 12h or 30m", param_hint=hint)
    if delta <= dt.timedelta(0):
        raise click.BadParameter(f"{value!r}: must be longer than zero", param_hint=hint)
    return delta


def _parse_until(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    usage = "use a date (2026-11-01) or a time (2026-11-01T12:00:00Z)"
    return _parse_moment(value, "--until", usage, ages=False)


def _open_reports(storage: str, error: type[click.ClickException]) -> Any:
    from .reports import open_reports  # noqa: PLC0415 - only the report commands need it.

    try:
        return open_reports(storage)
    except (ConfigurationError, BackendError) as exc:
        raise error(exc.message) from None


_filters = [
    click.option("--platform", help="Only this platform: android, ios, electron."),
    click.option("--channel", help="Only this channel (channel, else defaultChannel)."),
    click.option(
        "--all-devices",
        is_flag=True,
        help="Also count development builds and emulators (left out by default).",
    ),
]


def _with_filters(command: Any) -> Any:
    for option in reversed(_filters):
        command = option(command)
    return command


@cli.command(
    epilog="""\b
Examples:
  updater-stats report --app com.example.app
  updater-stats report --app com.example.app --since 30d --format json > report.json
  updater-stats report --app com.example.app --since 2026-11-01 --chart daily.png

\b
Event times are the device's clock when it is plausible (at most 5 minutes
ahead of the server and 30 days behind), the server's receive time otherwise.""",
)
@storage_option
@click.option("--app", "app_id", required=True, metavar="ID", help="The app_id to report on.")
@click.option(
    "--since",
    default="7d",
    show_default=True,
    metavar="DATE",
    help="From: 2026-11-01, 2026-11-01T12:00Z, 7d, 12h.",
)
@click.option("--until", metavar="DATE", help="Up to (excluded); default: now.")
@_with_filters
@table_format_option
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.png",
    help="Also draw installs per day, the daily failure rate per version against the "
    "gate's limit, and adoption per version.",
)
@click.option(
    "--max-failure-rate",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    help="The gate's limit, drawn on the chart's failure-rate panel.",
)
def report(
    storage: str,
    app_id: str,
    since: str,
    until: str | None,
    platform: str | None,
    channel: str | None,
    all_devices: bool,
    output_format: str,
    chart: str | None,
    max_failure_rate: float,
) -> None:
    """Per-version installs and failures, the update funnel, adoption, activity, download times."""
    from .reports import (  # noqa: PLC0415
        ReportQuery,
        daily_chart,
        print_summary,
        require_matplotlib,
        summarize,
    )

    if chart is not None:
        # Checked before any query: a typo in the path must not cost a report's worth of work.
        folder = Path(chart).resolve().parent
        if not folder.is_dir():
            raise click.ClickException(f"cannot write the chart: no folder {str(folder)!r}")
        try:
            require_matplotlib()
        except ConfigurationError as error:
            raise click.ClickException(error.message) from None
    try:
        query = ReportQuery(
            app_id=app_id,
            since=_parse_since(since),
            until=_parse_until(until) or dt.datetime.now(dt.timezone.utc),
            platform=platform,
            channel=channel,
            all_devices=all_devices,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since / --until") from None
    reports = _open_reports(storage, click.ClickException)
    try:
        summary = summarize(reports, query)
        if summary.active.total == 0:
            click.echo(
                f"note: no event of app {app_id!r} in this window and storage (with these "
                "filters): check --app, --storage, --since and --until",
                err=True,
            )
        if output_format == "json":
            click.echo(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
        elif output_format == "csv":
            rows = csv.writer(sys.stdout, lineterminator="\n")
            rows.writerow(summary.csv_header())
            rows.writerows([_csv_cell(cell) for cell in row] for row in summary.csv_rows())
        else:
            print_summary(summary)
        if chart is not None:
            daily_chart(
                summary.daily,
                chart,
                title=f"{app_id}: installs, failure rate and adoption per day",
                max_failure_rate=max_failure_rate,
            )
            click.echo(f"chart written to {chart}", err=True)
    except (ConfigurationError, BackendError) as error:
        raise click.ClickException(error.message) from None
    finally:
        reports.close()


@cli.command(
    cls=_GateCommand,
    epilog="""\b
Exit codes:
  0  healthy            the failure rate's 95 % interval is within the limit
  1  at_risk            the interval is entirely above the limit
  2  insufficient_data  some, but fewer than --min-devices, devices tried it
  3  warning            the interval straddles the limit: not proven either way
  4  the gate could not run (bad options, storage unavailable)
  5  no event of this app, or of this version, in the window: a typo in
     --app or --version, or the wrong --storage

\b
Examples:
  updater-stats gate --app com.example.app --version 1.4.2
  updater-stats gate --app com.example.app --version 1.4.2 --max-failure-rate 0.02 --json""",
)
@storage_option
@click.option("--app", "app_id", required=True, metavar="ID", help="The app_id.")
@click.option("--version", "version", required=True, metavar="V", help="The bundle version.")
@click.option(
    "--max-failure-rate",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    help="The share of devices that may see a failure.",
)
@click.option(
    "--min-devices",
    default=50,
    show_default=True,
    type=click.IntRange(1),
    help="Fewer devices than this: insufficient_data.",
)
@click.option(
    "--window", default="7d", show_default=True, help="How far back to look: 7d, 24h, 90m."
)
@_with_filters
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def gate(
    storage: str,
    app_id: str,
    version: str,
    max_failure_rate: float,
    min_devices: int,
    window: str,
    platform: str | None,
    channel: str | None,
    all_devices: bool,
    as_json: bool,
) -> None:
    """Is this release healthy? Print the verdict; the exit code says it to scripts.

    Needs only the server extra: the verdict is plain text.
    """
    from .reports import HealthPolicy, ReportQuery, print_health, release_health  # noqa: PLC0415

    try:
        policy = HealthPolicy(
            max_failure_rate=max_failure_rate,
            min_devices=min_devices,
            window=_parse_duration(window, "--window"),
        )
    except click.BadParameter as error:
        raise _GateError(error.format_message()) from None
    reports = _open_reports(storage, _GateError)
    try:
        health = release_health(
            reports,
            app_id,
            version,
            policy,
            platform=platform,
            channel=channel,
            all_devices=all_devices,
        )
        missing = None
        if health.figures.devices == 0:
            scope = ReportQuery(
                app_id=app_id,
                since=health.since,
                until=health.until,
                platform=platform,
                channel=channel,
                all_devices=all_devices,
            )
            missing = _missing(reports, scope, version)
        if missing is not None:
            problem, message = missing
            if as_json:
                answer: dict[str, Any] = {"app_id": app_id, "version": version}
                answer |= {"error": problem, "message": message, "exit_code": _GATE_NO_DATA}
                click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
            else:
                click.echo(f"{app_id} {version}: {problem} (exit {_GATE_NO_DATA})")
                click.echo(f"  - {message}")
        elif as_json:
            click.echo(json.dumps(health.to_json(), indent=2, ensure_ascii=False))
        else:
            print_health(health)
    except (ConfigurationError, BackendError) as error:
        raise _GateError(error.message) from None
    finally:
        reports.close()
    sys.exit(_GATE_NO_DATA if missing is not None else health.verdict.exit_code)


def _missing(reports: Reports, window: ReportQuery, version: str) -> tuple[str, str]:
    """Why a version has no device in the window: no event of the app, or none of it."""
    since, until = _iso(window.since), _iso(window.until)
    if reports.active_devices(window).total == 0:
        return "no_such_app", (
            f"no event of app {window.app_id!r} from {since} to {until} in this storage "
            "(with these filters): check --app, --storage and the filters"
        )
    seen = [v.version for v in reports.versions(window) if v.devices][:5]
    return "no_such_version", (
        f"no device sent an event about version {version!r} from {since} to {until}; "
        f"versions seen: {', '.join(seen)}"
    )


def main() -> None:
    """The console script's entry point."""
    cli()
