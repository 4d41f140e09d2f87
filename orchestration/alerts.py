"""Alerting sensors: anomalies, run failures, failed checks and stale data reach people.

Every sensor writes to the outbox (ops.alert_deliveries) first and then delivers what is due,
so retries, quiet hours, caps and digests behave the same whatever raised the alert.
"""

import os
from datetime import UTC, datetime

from dagster import (
    ConfigurableResource,
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    EnvVar,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)
from dagster_twilio import TwilioResource
from pydantic import Field

from alerting.channels import SmtpEmailChannel, TwilioSmsChannel
from alerting.delivery import DeliveryReport, deliver_due
from alerting.outbox import enqueue_anomalies
from alerting.platform_events import (
    RunFacts,
    enqueue_failed_checks,
    enqueue_run_failure,
    enqueue_stale_data,
)
from orchestration.constants import EVERY_DAEMON_LOOP
from orchestration.resources import WarehouseResource


class AlertChannelsResource(ConfigurableResource):
    """SMTP and Twilio settings; a channel without its settings records `not_configured`."""

    smtp_host: str | None = Field(default=None, description="SMTP_HOST")
    smtp_port: int = Field(default=25, description="SMTP_PORT")
    smtp_user: str | None = Field(default=None, description="SMTP_USER")
    smtp_password: str | None = Field(default=None, description="SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=False, description="SMTP_STARTTLS")
    alert_from: str = Field(default="StorePulse <alerts@storepulse.local>",
                            description="ALERT_FROM")
    twilio_account_sid: str | None = Field(default=None, description="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str | None = Field(default=None, description="TWILIO_AUTH_TOKEN")
    twilio_from: str | None = Field(default=None, description="TWILIO_FROM")
    twilio_api_base: str | None = Field(
        default=None, description="TWILIO_API_BASE (tests point it at a local server)")
    data_team_email: str | None = Field(default=None, description="DATA_TEAM_EMAIL")
    dagster_url: str = Field(default="http://localhost:3000", description="DAGSTER_URL")
    dashboard_url: str | None = Field(default=None, description="METABASE_URL")

    def email_channel(self) -> SmtpEmailChannel | None:
        if not self.smtp_host:
            return None
        return SmtpEmailChannel(self.smtp_host, self.smtp_port, self.alert_from,
                                self.smtp_user or None, self.smtp_password or None,
                                self.smtp_starttls)

    def sms_channel(self) -> TwilioSmsChannel | None:
        if not (self.twilio_account_sid and self.twilio_auth_token and self.twilio_from):
            return None
        client = TwilioResource(account_sid=self.twilio_account_sid,
                                auth_token=self.twilio_auth_token).create_client()
        if self.twilio_api_base:
            client.api.base_url = self.twilio_api_base.rstrip("/")
        return TwilioSmsChannel(client, self.twilio_from)

    def deliver(self, warehouse: WarehouseResource) -> DeliveryReport:
        return deliver_due(warehouse.engine(), datetime.now(UTC), email=self.email_channel(),
                           sms=self.sms_channel(), default_link=self.dashboard_url,
                           missing_settings={
                               "email": "SMTP_HOST is not set",
                               "sms": "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM "
                                      "must all be set"})


_ENV = {  # field -> environment variable; EnvVar keeps secrets out of the run config
    "smtp_host": "SMTP_HOST", "smtp_port": "SMTP_PORT", "smtp_user": "SMTP_USER",
    "smtp_password": "SMTP_PASSWORD", "smtp_starttls": "SMTP_STARTTLS",
    "alert_from": "ALERT_FROM", "twilio_account_sid": "TWILIO_ACCOUNT_SID",
    "twilio_auth_token": "TWILIO_AUTH_TOKEN", "twilio_from": "TWILIO_FROM",
    "twilio_api_base": "TWILIO_API_BASE", "data_team_email": "DATA_TEAM_EMAIL",
    "dagster_url": "DAGSTER_URL", "dashboard_url": "METABASE_URL",
}


def alert_channels_from_env() -> AlertChannelsResource:
    """EnvVar for every variable that is set; an unset one leaves its channel unconfigured
    (Dagster would refuse to start on an EnvVar whose variable is missing)."""
    values = {}
    for field_name, variable in _ENV.items():
        if os.environ.get(variable):
            if field_name == "smtp_port":
                values[field_name] = EnvVar.int(variable)
            elif field_name == "smtp_starttls":
                values[field_name] = os.environ[variable].lower() in ("1", "true", "yes")
            else:
                values[field_name] = EnvVar(variable)
    return AlertChannelsResource(**values)


# Every pass of the sensor daemon's loop: an anomaly reaches the manager within a pass of
# the ML run that found it, and a pass with nothing new is two small queries.
@sensor(minimum_interval_seconds=EVERY_DAEMON_LOOP, default_status=DefaultSensorStatus.RUNNING,
        description="New rows in ml.anomalies (cursor: alert_seq) become outbox rows per "
                    "recipient and channel by the tenant's rules (anomalies on days before "
                    "the tenant's recent days are written as suppressed, not sent); then "
                    "due deliveries are sent as one digest per recipient, with retries, "
                    "quiet hours and caps.")
def anomaly_alert_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource,
                         alert_channels: AlertChannelsResource):
    cursor = int(context.cursor or 0)
    enqueued = enqueue_anomalies(warehouse.engine(), cursor)
    report = alert_channels.deliver(warehouse)
    context.update_cursor(str(enqueued.cursor))
    for error in report.errors:
        context.log.warning(error)
    return _outcome(enqueued.describe(), report)


def _outcome(what: str, report: DeliveryReport) -> SkipReason:
    """What the tick did, as its reason. Dagster records every tick that requests no run as
    skipped; without a reason of ours, a tick that sent a hundred alerts would read "Sensor
    function returned an empty result" in the tick history."""
    return SkipReason(f"{what}; {report.summary()}")


def _run_facts(context: RunStatusSensorContext, alert_channels: AlertChannelsResource
               ) -> RunFacts:
    run = context.dagster_run
    return RunFacts(run.run_id, run.job_name, run.tags.get("dagster/partition"),
                    f"{alert_channels.dagster_url.rstrip('/')}/runs/{run.run_id}")


def _failed_checks(context: RunStatusSensorContext) -> list[str]:
    records = context.instance.all_logs(context.dagster_run.run_id,
                                        of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    failed = []
    for record in records:
        evaluation = record.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.severity.value == "ERROR":
            failed.append(f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}")
    return failed


@run_failure_sensor(default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=10,
                    description="Emails the data team (DATA_TEAM_EMAIL) when a run fails, with "
                                "the run link, the error and any failed blocking checks.")
def run_failure_alert_sensor(context: RunFailureSensorContext, warehouse: WarehouseResource,
                             alert_channels: AlertChannelsResource):
    enqueue_run_failure(warehouse.engine(), _run_facts(context, alert_channels),
                        context.failure_event.message, _failed_checks(context),
                        alert_channels.data_team_email)
    alert_channels.deliver(warehouse)


@run_status_sensor(run_status=DagsterRunStatus.SUCCESS,
                   default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=10,
                   description="A failed ERROR-severity check does not fail its run unless it "
                               "is blocking: this emails the data team about such checks in "
                               "runs that succeeded.")
def failed_check_alert_sensor(context: RunStatusSensorContext, warehouse: WarehouseResource,
                              alert_channels: AlertChannelsResource):
    failed = _failed_checks(context)
    if not failed:
        return
    enqueue_failed_checks(warehouse.engine(), _run_facts(context, alert_channels), failed,
                          alert_channels.data_team_email)
    alert_channels.deliver(warehouse)


@sensor(minimum_interval_seconds=3600, default_status=DefaultSensorStatus.RUNNING,
        description="Alerts a tenant's email recipients and the data team when no new sales "
                    "file arrived for longer than the tenant's stale_after (ops.alert_rules).")
def stale_data_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource,
                      alert_channels: AlertChannelsResource):
    queued = enqueue_stale_data(warehouse.engine(), datetime.now(UTC),
                                alert_channels.data_team_email)
    report = alert_channels.deliver(warehouse)
    for error in report.errors:
        context.log.warning(error)
    return _outcome(f"{queued} stale-data deliveries queued", report)


ALERT_SENSORS = [anomaly_alert_sensor, run_failure_alert_sensor, failed_check_alert_sensor,
                 stale_data_sensor]
