"""The executor comes from configuration (STOREPULSE_EXECUTOR), not from code changes."""

import re
import sys

import pytest
from dagster import in_process_executor, multiprocess_executor

from orchestration.executors import celery_config, executor_for
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


def test_celery_executor_is_configured_from_the_environment(monkeypatch):
    monkeypatch.setenv("STOREPULSE_EXECUTOR", "celery")
    monkeypatch.setenv("STOREPULSE_CELERY_BROKER", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("STOREPULSE_CELERY_QUEUE", "storepulse")
    executor = executor_for(load_executor_settings())
    assert executor.name == "celery"  # dagster-celery is installed by the dev install
    config = celery_config(load_executor_settings())
    assert config["broker"] == "redis://127.0.0.1:6379/3"
    assert config["config_source"]["task_default_queue"] == "storepulse"
    assert config["config_source"]["task_acks_late"] is True
    assert config["retries"] == {"disabled": {}}


def test_a_missing_extra_is_named(monkeypatch):
    for module, kind, extra in (("dagster_celery", "celery", "storepulse[celery]"),
                                ("dagster_k8s", "k8s", "storepulse[k8s]")):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
        with pytest.raises(StorePulseError, match=re.escape(extra)):
            executor_for(ExecutorSettings(kind))


def test_unknown_executor_is_a_clear_error():
    with pytest.raises(StorePulseError, match="choose one of multiprocess, in_process"):
        executor_for(ExecutorSettings("threads"))
