"""The executor is configuration: STOREPULSE_EXECUTOR picks it, no code changes.

- ``in_process`` (default): a run's steps in the run's own process (see
  storepulse.settings.ExecutorSettings for why).
- ``multiprocess``: each step in its own process on this machine; STOREPULSE_MAX_CONCURRENT
  caps them per run.
- ``celery``: steps go to Celery workers (``pip install 'storepulse[celery]'``), through the
  broker STOREPULSE_CELERY_BROKER (RabbitMQ on 127.0.0.1 by default; redis:// works too).
  Workers: ``dagster-celery worker start -A dagster_celery.app -y deploy/celery/worker.yaml``.
  A step whose worker dies is redelivered to another worker and runs again (late
  acknowledgement, rejected on worker loss): every StorePulse step is one transaction or
  replaces its output, so a rerun leaves nothing partial. Dagster's own step retries stay off,
  so a step that *fails* fails the run loudly.
- ``k8s``: each step is a Kubernetes job (``pip install 'storepulse[k8s]'``; pair it with the
  K8sRunLauncher in dagster.yaml).
"""

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from storepulse.errors import StorePulseError
from storepulse.settings import ExecutorSettings, load_executor_settings

EXECUTORS = ("multiprocess", "in_process", "celery", "k8s")


def executor_for(settings: ExecutorSettings) -> ExecutorDefinition:
    if settings.kind == "multiprocess":
        if settings.max_concurrent:
            return multiprocess_executor.configured({"max_concurrent": settings.max_concurrent})
        return multiprocess_executor
    if settings.kind == "in_process":
        return in_process_executor
    if settings.kind == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as exc:
            raise StorePulseError("STOREPULSE_EXECUTOR=celery needs dagster-celery: "
                                  "pip install 'storepulse[celery]'") from exc
        return celery_executor.configured(celery_config(settings))
    if settings.kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise StorePulseError("STOREPULSE_EXECUTOR=k8s needs dagster-k8s: "
                                  "pip install 'storepulse[k8s]'") from exc
        return k8s_job_executor
    raise StorePulseError(f"STOREPULSE_EXECUTOR={settings.kind!r}: choose one of "
                          f"{', '.join(EXECUTORS)}")


# Shared by the executor and the workers (deploy/celery/worker.yaml says the same).
CELERY_APP_SETTINGS = {
    "task_acks_late": True,  # acknowledged when the step ends, not when it starts...
    "task_reject_on_worker_lost": True,  # ...so a killed worker's step goes to another
    "worker_prefetch_multiplier": 1,  # a worker takes one step at a time: no step waits
                                      # behind a long one on a busy worker
}


def celery_config(settings: ExecutorSettings) -> dict:
    return {"broker": settings.celery_broker, "backend": settings.celery_backend,
            "config_source": {**CELERY_APP_SETTINGS,
                              "task_default_queue": settings.celery_queue},
            "retries": {"disabled": {}}}


def executor_from_env() -> ExecutorDefinition:
    return executor_for(load_executor_settings())
