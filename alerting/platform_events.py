"""Alerts about the platform itself (a failed run, failed checks, stale data): who hears of
them and what they read. The data team hears of everything; a tenant's own email recipients
also hear that its data went stale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from alerting.freshness import StaleTenant, stale_tenants
from alerting.outbox import PLATFORM_TENANT, enqueue_event
from alerting.rules import load_rules

Recipient = tuple[str, str]  # (channel, address)


@dataclass(frozen=True)
class RunFacts:
    """What a run sensor knows about the run that ended."""

    run_id: str
    job_name: str
    partition: str | None
    run_link: str


def data_team(email: str | None) -> list[Recipient]:
    return [("email", email)] if email else []


def enqueue_run_failure(engine: Engine, run: RunFacts, error: str | None,
                        failed_checks: list[str], data_team_email: str | None) -> int:
    body = error or "run failed"
    if failed_checks:
        body += "\nFailed blocking checks:\n" + "\n".join(f"- {c}" for c in failed_checks)
    return enqueue_event(engine, run.partition or PLATFORM_TENANT, "run_failure",
                         f"run:{run.run_id}", "high", data_team(data_team_email),
                         {"title": f"Run {run.run_id[:8]} of {run.job_name} failed",
                          "body": body, "link": run.run_link})


def enqueue_failed_checks(engine: Engine, run: RunFacts, failed_checks: list[str],
                          data_team_email: str | None) -> int:
    return enqueue_event(
        engine, run.partition or PLATFORM_TENANT, "check_failure", f"checks:{run.run_id}",
        "high", data_team(data_team_email),
        {"title": f"{len(failed_checks)} failed check(s) in run {run.run_id[:8]} of "
                  f"{run.job_name}", "body": "\n".join(failed_checks), "link": run.run_link})


def enqueue_stale_data(engine: Engine, now: datetime, data_team_email: str | None) -> int:
    """An alert per tenant whose last sales file is older than its rules allow."""
    queued = 0
    for stale in stale_tenants(engine, now):
        queued += enqueue_event(engine, stale.tenant_id, "stale_data", stale.key, "high",
                                _stale_recipients(engine, stale, data_team_email),
                                _stale_payload(stale, now))
    return queued


def _stale_recipients(engine: Engine, stale: StaleTenant, data_team_email: str | None
                      ) -> list[Recipient]:
    with engine.connect() as conn:
        rules = load_rules(conn, stale.tenant_id)
    tenant = [("email", r) for r in (rules.email_recipients if rules else ())]
    return tenant + data_team(data_team_email)


def _stale_payload(stale: StaleTenant, now: datetime) -> dict[str, Any]:
    return {"title": f"{stale.tenant_id}: no new sales data", "body": stale.describe(now)}

