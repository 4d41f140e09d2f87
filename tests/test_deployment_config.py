"""docker-compose.yml, dagster.yaml and .env.example agree with the code."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("storepulse", "ingestion", "quality", "alerting", "ml", "dashboards",
             "orchestration")


def _env_vars_read_by_code() -> set[str]:
    found = set()
    pattern = re.compile(
        r"""(?:environ\.get|environ\[|getenv|EnvVar)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(pattern.findall(path.read_text()))
    return found


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def test_every_env_var_in_code_is_in_env_example():
    used = _env_vars_read_by_code()
    assert {"DATABASE_URL", "STOREPULSE_HOME"} <= used
    missing = used - set(_env_example()) - {"DAGSTER_HOME"}  # set by the image itself
    assert missing == set()


def test_compose_services_have_images_or_builds_and_real_commands():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "dagster-webserver", "dagster-daemon", "metabase", "mailpit",
            "metabase-setup"} <= set(services)
    anchors = compose.get("x-storepulse", {})
    for name, service in services.items():
        assert service.get("image") or service.get("build") or anchors, name
        command = service.get("command")
        if command and command[0] == "storepulse":
            from click.testing import CliRunner

            from storepulse_cli.commands import cli
            help_run = CliRunner().invoke(cli, [*command[1:], "--help"])
            assert help_run.exit_code == 0, f"{name}: {' '.join(command)} is not a command"
    env_example = _env_example()
    for name, service in services.items():
        for value in (service.get("environment") or {}).values():
            for var in re.findall(r"\$\{([A-Z0-9_]+)\}", str(value)):
                assert var in env_example, f"{name} uses ${{{var}}} missing in .env.example"


def test_dagster_yaml_queues_runs_with_per_tenant_limits():
    config = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    limits = config["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert any(limit["key"] == "dagster/partition" and limit["limit"] == 1 for limit in limits)
    assert "postgres" in config["storage"]
    env_example = _env_example()
    for field in config["storage"]["postgres"]["postgres_db"].values():
        if isinstance(field, dict) and "env" in field:
            assert field["env"] in env_example


def test_alert_settings_are_documented_in_env_example():
    from orchestration.alerts import _ENV

    assert set(_ENV.values()) <= set(_env_example())


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_only_the_user_facing_port_listens_beyond_loopback():
    services = _compose()["services"]
    assert "ports" not in services["postgres"]  # the warehouse is never published
    public = {name: port for name, service in services.items()
              for port in service.get("ports", []) if not str(port).startswith("127.0.0.1:")}
    assert public == {"metabase": "3000:3000"}


def test_long_running_services_restart_and_report_health():
    services = _compose()["services"]
    for name in ("postgres", "dagster-webserver", "dagster-daemon", "metabase", "mailpit"):
        assert services[name].get("restart") == "unless-stopped", name
    for name in ("postgres", "dagster-webserver", "dagster-daemon", "metabase"):
        assert services[name].get("healthcheck", {}).get("test"), name
    assert services["dagster-daemon"]["healthcheck"]["test"][-1] == "liveness-check"


def test_links_and_secrets_point_where_they_should():
    services, env = _compose()["services"], _env_example()
    webserver_port = services["dagster-webserver"]["ports"][0].rsplit(":", 1)[-1]
    assert env["DAGSTER_URL"].rstrip("/").endswith(f":{webserver_port}")  # not Metabase's
    assert "MB_ENCRYPTION_SECRET_KEY" in services["metabase"]["environment"]
    assert env["METABASE_TENANT_DB_SECRET"].startswith("change-me")  # refused if left so


def test_images_hold_no_secrets_or_history_and_do_not_run_as_root():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".storepulse", ".venv"} <= set(ignored)
    users = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines()
             if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def test_run_logs_are_on_a_volume_both_dagster_services_mount():
    config = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    base_dir = config["compute_logs"]["config"]["base_dir"]
    compose = _compose()
    mounts = [m.split(":") for m in compose["x-storepulse"]["volumes"]]
    assert any(target == base_dir and volume in compose["volumes"] for volume, target in mounts)


def test_compose_runs_steps_on_celery_workers_through_a_broker():
    compose = _compose()
    services, env = compose["services"], _env_example()
    shared = compose["x-storepulse"]["environment"]
    assert shared["STOREPULSE_EXECUTOR"] == "celery"
    assert "@rabbitmq:5672" in shared["STOREPULSE_CELERY_BROKER"]
    worker = services["celery-worker"]
    assert worker["command"][:3] == ["dagster-celery", "worker", "start"]
    config = worker["command"][worker["command"].index("-y") + 1]
    assert (ROOT / config).is_file()  # the worker config the image ships
    assert worker["restart"] == "unless-stopped" and worker["healthcheck"]["test"]
    assert services["rabbitmq"]["healthcheck"]["test"] and "ports" not in services["rabbitmq"]
    assert env["RABBITMQ_PASSWORD"].startswith("change-me")
    assert "'.[celery]'" in (ROOT / "Dockerfile").read_text()  # the image has dagster-celery


def test_the_worker_config_is_the_executors():
    from orchestration.executors import CELERY_APP_SETTINGS

    worker = yaml.safe_load((ROOT / "deploy" / "celery" / "worker.yaml").read_text())
    config = worker["execution"]["config"]
    assert config["broker"] == {"env": "STOREPULSE_CELERY_BROKER"}
    assert config["config_source"] == CELERY_APP_SETTINGS


def test_helm_values_wire_user_code_run_launcher_executor_and_tenant_limits():
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    deployment, = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "orchestration.definitions"]
    assert {"name": "STOREPULSE_EXECUTOR", "value": "celery"} in deployment["env"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    limits = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"][
        "tagConcurrencyLimits"]
    dagster_yaml = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    compose_limits = dagster_yaml["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {(l["key"], l["limit"]) for l in limits} == {  # noqa: E741
        (l["key"], l["limit"]) for l in compose_limits}  # noqa: E741
    worker, = [m for m in values["extraManifests"] if m["kind"] == "Deployment"]
    container, = worker["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["dagster-celery", "worker", "start"]
    assert values["rabbitmq"]["enabled"] is True
