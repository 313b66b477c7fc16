"""runs/search and runs/log-inputs through the official MLflow client (MlflowClient.search_runs,
mlflow.search_runs into pandas, mlflow.log_input of a pandas dataset)."""

from __future__ import annotations

import math
import uuid

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client() -> MlflowClient:
    return MlflowClient()


@pytest.fixture
def runs(client: MlflowClient) -> tuple[str, dict[str, str]]:
    """Four runs with metrics (one NaN), params and tags, started in a known order."""
    experiment_id = client.create_experiment(unique("search"))
    specs = {
        "alpha": (1000, {"acc": 0.9, "loss": 0.2}, {"model": "lr"}, {"team": "risk"}),
        "beta": (2000, {"acc": float("nan"), "loss": 0.5}, {"model": "rf"}, {"team": "growth"}),
        "gamma": (3000, {"acc": 0.5}, {"model": "RF"}, {}),
        "delta": (4000, {}, {}, {}),
    }
    ids: dict[str, str] = {}
    for name, (start, metrics, params, tags) in specs.items():
        run = client.create_run(experiment_id, start_time=start, run_name=name)
        ids[name] = run.info.run_id
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, 1, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
    client.set_terminated(ids["gamma"], "FINISHED", end_time=3500)
    return experiment_id, ids


def names(found) -> list[str]:
    return [r.info.run_name for r in found]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.6", ["alpha"]),
        ("metrics.acc != 0.9", ["gamma", "beta"]),
        ("metrics.loss <= 0.5 and metrics.acc >= 0", ["alpha"]),
        ("params.model = 'rf'", ["beta"]),
        ("params.model ILIKE 'rf'", ["gamma", "beta"]),
        ("params.model LIKE 'r%'", ["beta"]),
        ("tags.team != 'risk'", ["beta"]),
        ("tags.`team` LIKE '%i%'", ["alpha"]),
        ("attributes.run_name = 'gamma'", ["gamma"]),
        ("attributes.status = 'FINISHED'", ["gamma"]),
        ("attributes.start_time >= 3000", ["delta", "gamma"]),
        ("attributes.end_time > 0", ["gamma"]),
        ("attributes.user_id != 'nobody'", ["delta", "gamma", "beta", "alpha"]),
    ],
)
def test_search_runs_filters(client: MlflowClient, runs, filter_string, expected) -> None:
    experiment_id, _ = runs
    assert names(client.search_runs([experiment_id], filter_string)) == expected


def test_search_runs_by_run_id_list(client: MlflowClient, runs) -> None:
    experiment_id, ids = runs
    found = client.search_runs(
        [experiment_id], f"attributes.run_id IN ('{ids['alpha']}', '{ids['delta']}')"
    )
    assert names(found) == ["delta", "alpha"]


def test_search_runs_returns_nan_metrics_as_nan(client: MlflowClient, runs) -> None:
    experiment_id, _ = runs
    [beta] = client.search_runs([experiment_id], "params.model = 'rf'")
    assert math.isnan(beta.data.metrics["acc"])
    assert beta.data.metrics["loss"] == 0.5
    assert beta.data.params == {"model": "rf"}
    assert beta.data.tags["team"] == "growth"


def test_search_runs_order_by_puts_nan_and_missing_last(client: MlflowClient, runs) -> None:
    experiment_id, _ = runs
    assert names(client.search_runs([experiment_id], order_by=["metrics.acc ASC"])) == [
        "gamma",
        "alpha",
        "beta",
        "delta",
    ]
    assert names(client.search_runs([experiment_id], order_by=["metrics.acc DESC"])) == [
        "alpha",
        "gamma",
        "beta",
        "delta",
    ]
    assert names(client.search_runs([experiment_id], order_by=["attributes.start_time"])) == [
        "alpha",
        "beta",
        "gamma",
        "delta",
    ]


def test_search_runs_pages_with_max_results_and_page_token(client: MlflowClient, runs) -> None:
    experiment_id, _ = runs
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = client.search_runs(
            [experiment_id], order_by=["metrics.acc DESC"], max_results=3, page_token=token
        )
        seen.extend(names(page))
        pages += 1
        token = page.token
        if not token:
            break
    assert pages == 2
    assert seen == ["alpha", "gamma", "beta", "delta"]


def test_search_runs_view_type(client: MlflowClient, runs) -> None:
    experiment_id, ids = runs
    client.delete_run(ids["delta"])
    assert names(client.search_runs([experiment_id])) == ["gamma", "beta", "alpha"]
    assert names(client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)) == [
        "delta"
    ]
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.ALL)) == 4


@pytest.mark.parametrize(
    "filter_string",
    ["metrics.acc > 1 OR metrics.acc < 0", "(metrics.acc > 1)", "status = RUNNING", "foo = 'x'"],
)
def test_search_runs_rejects_bad_filters(client: MlflowClient, runs, filter_string) -> None:
    experiment_id, _ = runs
    with pytest.raises(MlflowException) as excinfo:
        client.search_runs([experiment_id], filter_string)
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"


def test_fluent_search_runs_into_pandas(runs) -> None:
    experiment_id, ids = runs
    frame = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string="metrics.loss > 0",
        order_by=["metrics.loss DESC"],
    )
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["run_id"]) == [ids["beta"], ids["alpha"]]
    assert list(frame["metrics.loss"]) == [0.5, 0.2]
    assert list(frame["params.model"]) == ["rf", "lr"]
    assert list(frame["tags.team"]) == ["growth", "risk"]


def test_log_input_of_a_pandas_dataset_then_search_on_it(client: MlflowClient) -> None:
    experiment_id = client.create_experiment(unique("datasets"))
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, name="iris", targets="y")
    with mlflow.start_run(experiment_id=experiment_id, run_name="with-data") as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="eval")  # the same dataset again: linked once
    with mlflow.start_run(experiment_id=experiment_id, run_name="without-data"):
        pass

    logged = client.get_run(run.info.run_id)
    [dataset_input] = logged.inputs.dataset_inputs
    assert dataset_input.dataset.name == "iris"
    assert dataset_input.dataset.digest == dataset.digest
    assert dataset_input.dataset.source_type
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"

    assert names(client.search_runs([experiment_id], "datasets.name = 'iris'")) == ["with-data"]
    assert names(
        client.search_runs([experiment_id], f"datasets.digest IN ('{dataset.digest}')")
    ) == ["with-data"]
    assert names(client.search_runs([experiment_id], "datasets.context = 'training'")) == [
        "with-data"
    ]
    assert names(client.search_runs([experiment_id], "datasets.context = 'eval'")) == []


def test_log_input_to_a_deleted_run_is_refused(client: MlflowClient) -> None:
    experiment_id = client.create_experiment(unique("datasets"))
    run = client.create_run(experiment_id)
    client.delete_run(run.info.run_id)
    frame = pd.DataFrame({"x": [1]})
    dataset = mlflow.data.from_pandas(frame, name="tiny")
    with pytest.raises(MlflowException) as excinfo:
        client.log_inputs(run.info.run_id, [mlflow.entities.DatasetInput(dataset._to_mlflow_entity())])
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"
