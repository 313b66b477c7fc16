"""The official MLflow Python client logging metrics to a Ledgerflow server started by conftest.py:
single points with steps, batches over the 1000-metric request limit (the client splits them),
history round trips (NaN kept, +Inf clamped as MLflow stores it), the run's latest metrics, and
asynchronous logging.
"""

from __future__ import annotations

import math
import uuid

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

MAX_DOUBLE = 1.7976931348623157e308


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client() -> MlflowClient:
    return MlflowClient()


@pytest.fixture
def run_id(client: MlflowClient) -> str:
    experiment_id = client.create_experiment(unique("metrics"))
    return client.create_run(experiment_id).info.run_id


def test_log_metric_with_steps_round_trips_in_history(client: MlflowClient, run_id: str) -> None:
    for step in range(5):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=1000 + step, step=step)
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (step, 1.0 / (step + 1), 1000 + step) for step in range(5)
    ]
    assert all(m.key == "loss" for m in history)


def test_nan_round_trips_and_infinity_comes_back_clamped(client: MlflowClient, run_id: str) -> None:
    client.log_metric(run_id, "odd", float("nan"), timestamp=1, step=0)
    client.log_metric(run_id, "odd", float("inf"), timestamp=2, step=1)
    client.log_metric(run_id, "odd", float("-inf"), timestamp=3, step=2)
    values = [m.value for m in client.get_metric_history(run_id, "odd")]
    assert math.isnan(values[0])
    assert values[1:] == [MAX_DOUBLE, -MAX_DOUBLE]


def test_log_metrics_of_more_than_1000_points_are_split_and_all_stored(run_id: str) -> None:
    client = MlflowClient()
    metrics = [Metric(f"m{i % 7}", float(i), 10_000 + i, i) for i in range(2500)]
    client.log_batch(
        run_id,
        metrics=metrics,
        params=[Param("p", "1")],
        tags=[RunTag("t", "x")],
    )
    total = sum(len(client.get_metric_history(run_id, f"m{k}")) for k in range(7))
    assert total == 2500
    history = client.get_metric_history(run_id, "m3")
    assert [m.step for m in history] == list(range(3, 2500, 7))
    run = client.get_run(run_id)
    assert run.data.params == {"p": "1"}
    assert run.data.tags["t"] == "x"


def test_fluent_log_metrics_and_latest_metric_in_get_run(client: MlflowClient) -> None:
    mlflow.set_experiment(unique("fluent-metrics"))
    with mlflow.start_run() as run:
        for step in range(3):
            mlflow.log_metrics({"acc": 0.5 + step / 10, "loss": 1.0 - step / 10}, step=step)
        mlflow.log_metric("acc", 0.1, step=1)  # an older step does not become the latest
    data = client.get_run(run.info.run_id).data
    assert data.metrics == {"acc": pytest.approx(0.7), "loss": pytest.approx(0.8)}
    assert len(client.get_metric_history(run.info.run_id, "acc")) == 4


def test_duplicate_points_are_stored_once(client: MlflowClient, run_id: str) -> None:
    for _ in range(3):
        client.log_metric(run_id, "dup", 2.0, timestamp=5, step=1)
    client.log_batch(run_id, metrics=[Metric("dup", 2.0, 5, 1), Metric("dup", 2.0, 6, 1)])
    assert [(m.timestamp, m.value) for m in client.get_metric_history(run_id, "dup")] == [
        (5, 2.0),
        (6, 2.0),
    ]


def test_metric_on_a_deleted_run_is_refused(client: MlflowClient, run_id: str) -> None:
    client.delete_run(run_id)
    with pytest.raises(MlflowException) as excinfo:
        client.log_metric(run_id, "late", 1.0)
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"


def test_async_logging_with_synchronous_false_ends_with_every_point(client: MlflowClient) -> None:
    mlflow.set_experiment(unique("async-metrics"))
    with mlflow.start_run() as run:
        operations = [
            mlflow.log_metric("async_loss", 1.0 / (step + 1), step=step, synchronous=False)
            for step in range(50)
        ]
        for op in operations:
            op.wait()
    history = client.get_metric_history(run.info.run_id, "async_loss")
    assert sorted(m.step for m in history) == list(range(50))


def test_async_logging_by_environment_flag_ends_with_every_point(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "true")
    mlflow.set_experiment(unique("async-env-metrics"))
    with mlflow.start_run() as run:
        for step in range(30):
            mlflow.log_metrics({"a": float(step), "b": -float(step)}, step=step)
        mlflow.log_param("kind", "async")
    # ending the run flushes the async queue
    mlflow.flush_async_logging()
    for key in ("a", "b"):
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == list(range(30))
    assert client.get_run(run.info.run_id).data.params == {"kind": "async"}
