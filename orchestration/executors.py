"""The executor is configuration: STOREPULSE_EXECUTOR picks it, no code changes.

- ``in_process`` (default): a run's steps in the run's own process (see
  storepulse.settings.ExecutorSettings for why).
- ``multiprocess``: each step in its own process on this machine; STOREPULSE_MAX_CONCURRENT
  caps them per run.
- ``celery``: steps go to Celery workers (``pip install 'storepulse[celery]'``; broker and
  backend come from the run config / dagster-celery's defaults, e.g. redis).
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
        return celery_executor
    if settings.kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise StorePulseError("STOREPULSE_EXECUTOR=k8s needs dagster-k8s: "
                                  "pip install 'storepulse[k8s]'") from exc
        return k8s_job_executor
    raise StorePulseError(f"STOREPULSE_EXECUTOR={settings.kind!r}: choose one of "
                          f"{', '.join(EXECUTORS)}")


def executor_from_env() -> ExecutorDefinition:
    return executor_for(load_executor_settings())
