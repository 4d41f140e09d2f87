"""The executor comes from configuration (STOREPULSE_EXECUTOR), not from code changes."""

import pytest
from dagster import in_process_executor, multiprocess_executor

from orchestration.executors import executor_for
from storepulse.errors import StorePulseError
from storepulse.settings import ExecutorSettings, load_executor_settings


def test_default_is_in_process(monkeypatch):
    monkeypatch.delenv("STOREPULSE_EXECUTOR", raising=False)
    monkeypatch.delenv("STOREPULSE_MAX_CONCURRENT", raising=False)
    assert executor_for(load_executor_settings()) is in_process_executor
    assert executor_for(ExecutorSettings("multiprocess")) is multiprocess_executor


def test_env_selects_and_configures(monkeypatch):
    monkeypatch.setenv("STOREPULSE_EXECUTOR", "multiprocess")
    monkeypatch.setenv("STOREPULSE_MAX_CONCURRENT", "2")
    executor = executor_for(load_executor_settings())
    assert executor.name == "multiprocess" and executor is not multiprocess_executor
    assert executor_for(ExecutorSettings("in_process")) is in_process_executor


def test_cluster_executors_name_their_extra_or_load(monkeypatch):
    for kind, extra in (("celery", "storepulse[celery]"), ("k8s", "storepulse[k8s]")):
        try:
            assert executor_for(ExecutorSettings(kind)).name.startswith(kind)
        except StorePulseError as exc:
            assert extra in str(exc)


def test_unknown_executor_is_a_clear_error():
    with pytest.raises(StorePulseError, match="choose one of multiprocess, in_process"):
        executor_for(ExecutorSettings("threads"))
