"""Run a suite on a tenant's batch with Great Expectations, record it, and hold or release it.

The batch is the set of sales files one load brought in (``raw.ingest_files.batch_id``, the
orchestrator's run id). A failed ``error`` rule *holds* the batch: its files get ``held_at``
and the staging models skip them, so bad rows never reach a manager's dashboard, and nothing is
deleted. Validating the same batch again and passing (after a fix to the tenant's limits, say)
releases it; so does ``storepulse quality release``. A file a load committed but no gate judged
(the run was interrupted in between, or `storepulse quality check` never followed a
`storepulse ingest`) is judged with the next batch, so it cannot wait out of the marts unseen.
"""

from __future__ import annotations

import json
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from quality.suites import BatchContext, Rule, Suite, great_expectations
from storepulse.warehouse import libpq_params

SAMPLE_ROWS = 5
BATCH_VIEW = "batch_rows"  # the batch's rows, as GE's connections see them

# GE suggests its Postgres datasource whenever the generic one gets a postgresql URL; see
# _sql_datasource for why the generic one is the right choice here.
warnings.filterwarnings("ignore", message="You are using a generic SQLDatasource")


@dataclass
class RuleOutcome:
    suite: str
    rule: str
    description: str
    severity: str
    success: bool
    observed: list[dict[str, Any]] = field(default_factory=list)
    unexpected_count: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and not self.success

    def summary(self) -> str:
        if self.success:
            return f"{self.rule}: passed"
        parts = []
        for item in self.observed:
            if "error" in item:
                parts.append(f"could not run: {item['error']}")
            elif item.get("unexpected_count") is not None:
                parts.append(f"{item['unexpected_count']:,} of {item.get('element_count', 0):,} "
                             f"rows fail {item['expectation']}"
                             + (f" on {item['column']}" if item.get("column") else "")
                             + _allowed(item))
            else:
                parts.append(f"{item['expectation']} observed {item.get('observed_value')}")
        return f"{self.rule}: " + "; ".join(parts)


def _allowed(item: dict[str, Any]) -> str:
    """What a range expectation accepts, so a failure says what the values were held to."""
    low, high = item.get("min_value"), item.get("max_value")
    if low is None and high is None:
        return ""
    if low is None:
        return f" (allowed: at most {high})"
    if high is None:
        return f" (allowed: at least {low})"
    return f" (allowed: {low} to {high})"


@dataclass
class SuiteOutcome:
    suite: str
    tenant_id: str
    file_ids: tuple[int, ...]
    rules: list[RuleOutcome]
    hold_action: str = "none"  # held | released | none
    # The files this gate published (none were before): what the marts have yet to build.
    published: tuple[int, ...] = ()
    reused_from_run: str | None = None  # set when this batch's earlier result was reused

    @property
    def blocking_failures(self) -> list[RuleOutcome]:
        return [r for r in self.rules if r.blocking]

    def rule(self, name: str) -> RuleOutcome:
        return next(r for r in self.rules if r.rule == name)


def files_awaiting_gate(conn: sa.Connection, tenant_id: str) -> tuple[int, ...]:
    """Sales files loaded but never judged (neither published nor held): a run interrupted
    between its load and its gate, or a `storepulse ingest` whose `quality check` has not
    run. Until a gate passes them they never reach the marts."""
    return tuple(conn.execute(sa.text(
        "select file_id from raw.ingest_files where tenant_id = :t and status = 'loaded' "
        "and target = 'sales_lines' and published_at is null and held_at is null "
        "order by file_id"), {"t": tenant_id}).scalars().all())


def resolve_batch(conn: sa.Connection, tenant_id: str, batch_id: str | None = None,
                  awaiting: bool = False) -> tuple[int, ...]:
    """The sales files of ``batch_id``, with every other file awaiting the gate when
    ``awaiting`` (what the gate judges: an earlier load left unjudged is judged with the next,
    never left out of the marts unseen). Without any (no batch given, or it loaded none and
    nothing else waits), the tenant's most recent batch, so a check run on its own
    re-validates what was loaded last (and releases it if it passes now)."""
    query = ("select file_id from raw.ingest_files where tenant_id = :t and status = 'loaded' "
             "and target = 'sales_lines' and batch_id is not distinct from :b order by file_id")
    ids: set[int] = set()
    if batch_id is not None:
        ids |= set(conn.execute(sa.text(query), {"t": tenant_id, "b": batch_id}).scalars())
    if awaiting:
        ids |= set(files_awaiting_gate(conn, tenant_id))
    if ids:
        return tuple(sorted(ids))
    latest = conn.execute(sa.text(
        "select file_id, batch_id from raw.ingest_files where tenant_id = :t and "
        "status = 'loaded' and target = 'sales_lines' order by file_id desc limit 1"),
        {"t": tenant_id}).first()
    if latest is None:
        return ()
    if latest.batch_id is None:  # loaded outside any batch: the file is its own batch
        return (latest.file_id,)
    return tuple(conn.execute(sa.text(query), {"t": tenant_id, "b": latest.batch_id})
                 .scalars().all())


def batch_context(conn: sa.Connection, tenant_id: str, file_ids: tuple[int, ...],
                  now: datetime | None = None) -> BatchContext:
    tenant = conn.execute(sa.text(
        "select timezone, currency, accepted_currencies, max_unit_price from ops.tenants "
        "where tenant_id = :t"), {"t": tenant_id}).first()
    registered = tuple(conn.execute(sa.text("select tenant_id from ops.tenants"))
                       .scalars().all())
    timezone_name = tenant.timezone if tenant else "UTC"
    first_day = last_day = None
    if file_ids:
        first_day, last_day = conn.execute(sa.text(
            "select min((ordered_at at time zone :tz)::date), "
            "max((ordered_at at time zone :tz)::date) from raw.sales_lines "
            "where source_file_id = any(:ids)"),
            {"tz": timezone_name, "ids": list(file_ids)}).one()
    return BatchContext(
        tenant_id=tenant_id,
        timezone=timezone_name,
        file_ids=tuple(file_ids),
        accepted_currencies=tuple(tenant.accepted_currencies or [tenant.currency])
        if tenant else (),
        max_unit_price=float(tenant.max_unit_price) if tenant else 0.0,
        registered_tenants=registered,
        first_day=first_day,
        last_day=last_day,
        now=now or datetime.now(UTC),
        published_history=conn.execute(sa.text(
            "select to_regclass('marts.mart_daily_store_kpis') is not null")).scalar_one(),
    )


def run_suite(engine: Engine, suite: Suite, batch: BatchContext) -> list[RuleOutcome]:
    """Validate ``batch`` with Great Expectations: the rules on the batch's rows over SQL, on
    ``engine``'s database, and each rule with a query of its own on that query's result."""
    gx = great_expectations()
    context = _quiet_context(gx)
    rows_query = suite.batch_query(batch)
    outcomes = {rule.name: RuleOutcome(suite.name, rule.name, rule.description, rule.severity,
                                       True) for rule in suite.rules}
    for index, (query, rules) in enumerate(_rules_by_query(suite, batch).items()):
        name = f"{suite.name}_{index}"
        if query == rows_query:
            gx_batch = _sql_datasource(context, engine, rows_query).add_table_asset(
                name, table_name=BATCH_VIEW).add_batch_definition_whole_table("batch").get_batch()
        else:
            gx_batch = _result_batch(context, engine, name, query)
        gx_suite, expectations = _expectation_suite(gx, name, rules, batch)
        # Pass or fail only: the counts and sample rows of a failure cost a scan of the batch
        # per expectation, so only the failing expectations are asked for them.
        results = _validate(gx_batch, gx_suite, {"result_format": "BOOLEAN_ONLY"})
        failing = [e for _, e in expectations if not results[_config_key(e)].success]
        if failing:
            index_columns = sorted({c for r in rules for c in r.sample_columns})
            results.update(_sample_failures(gx, gx_batch, name, failing, index_columns))
        for rule, expectation in expectations:
            _merge(outcomes[rule.name], results[_config_key(expectation)])
    return list(outcomes.values())


def _result_batch(context: Any, engine: Engine, name: str, query: str) -> Any:
    """A rule's own query (daily totals, repeated keys) returns a few rows: they are read once
    and GE judges them in memory. Over SQL, GE would run the query again for every metric it
    needs (column names, row count, each expectation's counts)."""
    with engine.connect() as conn:
        rows = pd.read_sql_query(sa.text(query), conn)
    return (context.data_sources.add_pandas(f"{name}_result").add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe("batch")
            .get_batch(batch_parameters={"dataframe": rows}))


def _quiet_context(gx: ModuleType) -> Any:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _rules_by_query(suite: Suite, batch: BatchContext) -> dict[str, list[Rule]]:
    """Rules grouped by the query whose rows they judge: one GE batch per query."""
    groups: dict[str, list[Rule]] = {}
    for rule in suite.rules:
        query = rule.query(batch) if rule.query else suite.batch_query(batch)
        groups.setdefault(query, []).append(rule)
    return groups


def _expectation_suite(gx: ModuleType, name: str, rules: list[Rule], batch: BatchContext
                       ) -> tuple[Any, list[tuple[Rule, Any]]]:
    """The rules' expectations in one GE suite, each with the rule it belongs to. Results are
    matched to expectations by their configuration (type and kwargs): the ids of an unsaved
    suite are not reliable."""
    gx_suite = gx.ExpectationSuite(name)
    expectations: list[tuple[Rule, Any]] = []
    for rule in rules:
        for expectation in rule.expectations(batch):
            expectation.severity = "critical" if rule.severity == "error" else "warning"
            expectations.append((rule, gx_suite.add_expectation(expectation)))
    return gx_suite, expectations


def _sample_failures(gx: ModuleType, gx_batch: Any, name: str, failing: list[Any],
                     index_columns: list[str]) -> dict[str, Any]:
    """The failing expectations again, with sample rows: a query per expectation, so only
    for what failed."""
    retry = gx.ExpectationSuite(f"{name}_samples")
    for expectation in failing:
        retry.add_expectation(expectation.copy(update={"id": None}))
    result_format: dict[str, Any] = {"result_format": "SUMMARY",
                                     "partial_unexpected_count": SAMPLE_ROWS}
    if index_columns:
        result_format["unexpected_index_column_names"] = index_columns
    return _validate(gx_batch, retry, result_format)


def _sql_datasource(context: Any, engine: Engine, rows_query: str) -> Any:
    """A GE datasource on ``engine``'s database whose every connection sees the batch's rows
    as the temporary view ``BATCH_VIEW``.

    A view, not a GE query asset: to learn a query asset's columns, GE runs the whole query
    and fetches every row of the batch, on each validation. A view's columns come from the
    catalog. It is temporary, so it lives and dies with GE's connections, and two gates (two
    tenants) never see each other's.

    The connection parameters (dbt's) go to psycopg directly: GE's Postgres datasource
    validates its URL as a DSN with a host name, which refuses a server reached over a Unix
    socket (the embedded server: empty host, ``?host=/socket/dir``), and any GE URL goes
    through ``${VAR}`` substitution, which would mangle a password holding ``$``.
    """
    params = libpq_params(engine.url)

    def connect() -> psycopg.Connection:
        conn = psycopg.connect(**params)
        conn.execute(f"create temporary view {BATCH_VIEW} as {rows_query}")
        conn.commit()
        return conn

    return context.data_sources.add_sql(
        f"warehouse_{uuid.uuid4().hex[:8]}", connection_string=f"{engine.url.drivername}://",
        kwargs={"creator": connect})


def _validate(gx_batch: Any, gx_suite: Any, result_format: dict) -> dict[str, Any]:
    validation = gx_batch.validate(gx_suite, result_format=result_format)
    return {_config_key(r.expectation_config): r for r in validation.results}


def _config_key(expectation: Any) -> str:
    config = getattr(expectation, "configuration", expectation)
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")}
    return json.dumps([config.type, kwargs], sort_keys=True, default=str)


def _merge(outcome: RuleOutcome, result: Any) -> None:
    config = result.expectation_config
    raised = (result.exception_info or {}).get("raised_exception")
    success = bool(result.success) and not raised
    if success:
        return
    outcome.success = False
    detail: dict[str, Any] = {"expectation": config.type,
                              "column": config.kwargs.get("column")
                              or config.kwargs.get("column_list")}
    for bound in ("min_value", "max_value"):
        if config.kwargs.get(bound) is not None:
            detail[bound] = _jsonable(config.kwargs[bound])
    if raised:
        detail["error"] = str(result.exception_info.get("exception_message"))[:500]
    res = result.result or {}
    for key in ("observed_value", "element_count", "unexpected_count", "unexpected_percent"):
        if res.get(key) is not None:
            detail[key] = _jsonable(res[key])
    outcome.observed.append(detail)
    if res.get("unexpected_count") is not None:
        outcome.unexpected_count = (outcome.unexpected_count or 0) + int(res["unexpected_count"])
    rows = res.get("partial_unexpected_index_list") or [
        {"value": v} for v in res.get("partial_unexpected_list") or []]
    room = SAMPLE_ROWS - len(outcome.samples)
    outcome.samples.extend({k: _jsonable(v) for k, v in row.items()} for row in rows[:room])


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_plain))


def _plain(value: Any) -> Any:
    """A value JSON cannot hold: numpy's scalars (results judged in memory) as the Python
    number they hold, anything else (dates, decimals) as text."""
    return value.item() if isinstance(value, np.generic) else str(value)


def record(conn: sa.Connection, outcome: SuiteOutcome, run_id: str, asset: str) -> None:
    """One ops.quality_results row per rule, for trends in Metabase."""
    conn.execute(sa.text(
        "insert into ops.quality_results (run_id, tenant_id, suite, expectation, severity, "
        "success, observed, unexpected_count, file_ids, asset) values (:run, :t, :suite, :rule, "
        ":sev, :ok, cast(:obs as jsonb), :n, :files, :asset)"),
        [{"run": run_id, "t": outcome.tenant_id, "suite": outcome.suite, "rule": r.rule,
          "sev": r.severity, "ok": r.success, "n": r.unexpected_count,
          "obs": json.dumps({"failures": r.observed, "samples": r.samples}),
          "files": list(outcome.file_ids), "asset": asset} for r in outcome.rules])


def apply_gate(conn: sa.Connection, outcome: SuiteOutcome) -> str:
    """Hold the batch's files when an error rule failed; publish them (and release any hold)
    when all passed, noting on ``outcome`` which were not published before. Only published
    sales lines reach staging."""
    if not outcome.file_ids:
        return "none"
    ids = list(outcome.file_ids)
    failures = outcome.blocking_failures
    if failures:
        reason = f"{outcome.suite}: " + "; ".join(r.summary() for r in failures)
        held = conn.execute(sa.text(
            "update raw.ingest_files set held_at = coalesce(held_at, now()), held_reason = :r "
            "where file_id = any(:ids)"),
            {"r": reason[:2000], "ids": ids}).rowcount
        return "held" if held else "none"
    released = conn.execute(sa.text(
        "update raw.ingest_files set held_at = null, held_reason = null "
        "where file_id = any(:ids) and held_at is not null"), {"ids": ids}).rowcount
    outcome.published = _publish(conn, ids)
    return "released" if released else "none"


def _publish(conn: sa.Connection, file_ids: list[int]) -> tuple[int, ...]:
    """Publish the files not published yet; those files."""
    return tuple(sorted(conn.execute(sa.text(
        "update raw.ingest_files set published_at = now() "
        "where file_id = any(:ids) and published_at is null returning file_id"),
        {"ids": file_ids}).scalars()))


def previous_outcome(conn: sa.Connection, suite: Suite, tenant_id: str,
                     file_ids: tuple[int, ...]) -> SuiteOutcome | None:
    """The recorded result of ``suite`` on exactly these files, if it ran on them before."""
    run_id = conn.execute(sa.text(
        "select run_id from ops.quality_results where suite = :s and tenant_id = :t "
        "and file_ids = cast(:f as bigint[]) order by checked_at desc limit 1"),
        {"s": suite.name, "t": tenant_id, "f": list(file_ids)}).scalar()
    if run_id is None:
        return None
    stored = {row.expectation: row for row in conn.execute(sa.text(
        "select expectation, success, observed, unexpected_count from ops.quality_results "
        "where run_id = :r and suite = :s and tenant_id = :t"),
        {"r": run_id, "s": suite.name, "t": tenant_id})}
    if set(stored) != {r.name for r in suite.rules}:
        return None  # the suite changed since: validate again
    rules = [RuleOutcome(suite.name, r.name, r.description, r.severity,
                         stored[r.name].success, (stored[r.name].observed or {}).get(
                             "failures", []), stored[r.name].unexpected_count,
                         (stored[r.name].observed or {}).get("samples", []))
             for r in suite.rules]
    return SuiteOutcome(suite.name, tenant_id, file_ids, rules, reused_from_run=run_id)


def validate_batch(engine: Engine, suite: Suite, tenant_id: str, run_id: str,
                   batch_id: str | None = None, asset: str = "", gate: bool = True,
                   now: datetime | None = None, reuse: bool = False) -> SuiteOutcome:
    """Resolve the batch, validate it, record the results and (if ``gate``) hold/release.
    The gate also judges any file an earlier load left unjudged (``resolve_batch``).

    ``reuse``: a batch this suite already validated is not validated again; its recorded
    result is returned (a run that loaded nothing new need not re-scan the last batch).
    """
    with engine.connect() as conn:
        file_ids = resolve_batch(conn, tenant_id, batch_id, awaiting=gate)
        if reuse and file_ids:
            earlier = previous_outcome(conn, suite, tenant_id, file_ids)
            if earlier is not None:
                return earlier
        batch = batch_context(conn, tenant_id, file_ids, now)
    outcome = SuiteOutcome(suite.name, tenant_id, file_ids, run_suite(engine, suite, batch))
    with engine.begin() as conn:
        record(conn, outcome, run_id, asset or suite.table)
        if gate:
            outcome.hold_action = apply_gate(conn, outcome)
    return outcome


@dataclass(frozen=True)
class Hold:
    tenant_id: str
    file_id: int
    file_name: str
    held_at: datetime
    reason: str


def list_holds(engine: Engine, tenant_id: str | None = None) -> list[Hold]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select tenant_id, file_id, file_name, held_at, held_reason from raw.ingest_files "
            "where held_at is not null and status = 'loaded' "
            "and (cast(:t as text) is null or tenant_id = :t) order by tenant_id, file_id"),
            {"t": tenant_id}).all()
    return [Hold(*row) for row in rows]


def release_holds(engine: Engine, tenant_id: str, file_ids: list[int] | None = None
                  ) -> list[int]:
    """Let held files through to the marts (a person decided the data is right); the files
    released."""
    with engine.begin() as conn:
        released = conn.execute(sa.text(
            "update raw.ingest_files set held_at = null, held_reason = null "
            "where tenant_id = :t and held_at is not null "
            "and (cast(:ids as bigint[]) is null or file_id = any(:ids)) returning file_id"),
            {"t": tenant_id, "ids": file_ids}).scalars().all()
        _publish(conn, released)
        conn.execute(sa.text(
            "insert into ops.audit_log (action, tenant_id, details) values "
            "('quality_release', :t, cast(:d as jsonb))"),
            {"t": tenant_id, "d": json.dumps({"file_ids": released})})
    return list(released)
