"""The official MLflow 3 Python client against a Ledgerflow server started by conftest.py:
logged models (create, get, finalize, tags, params, delete, search), run outputs, model-linked
metrics, the 2.x runs/log-model history, and the REST sequence that `<flavor>.log_model` sends
as far as tracking goes (artifact upload is not served yet, so a full log_model call cannot
finish).

Every test makes its own uniquely named experiments, since all tests share one server.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.models import Model

UNKNOWN_MODEL_ID = "m-0123456789abcdef0123456789abcdef"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client() -> MlflowClient:
    return MlflowClient()


@pytest.fixture
def experiment_id(client: MlflowClient) -> str:
    return client.create_experiment(unique("models"))


def rest(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One raw REST call to the server, as the client would make it."""
    url = f"{os.environ['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_logged_model_round_trip(client: MlflowClient, experiment_id: str) -> None:
    run = client.create_run(experiment_id)
    model = client.create_logged_model(
        experiment_id=experiment_id,
        name="classifier",
        source_run_id=run.info.run_id,
        tags={"team": "fraud"},
        params={"lr": "0.1"},
        model_type="sklearn",
    )
    assert model.model_id.startswith("m-") and len(model.model_id) == 34
    assert model.experiment_id == experiment_id
    assert model.name == "classifier"
    assert model.status == LoggedModelStatus.PENDING
    assert model.source_run_id == run.info.run_id
    assert model.model_type == "sklearn"
    assert model.tags == {"team": "fraud"}
    assert model.params == {"lr": "0.1"}
    assert model.artifact_location == (
        f"mlflow-artifacts:/{experiment_id}/models/{model.model_id}/artifacts"
    )

    fetched = client.get_logged_model(model.model_id)
    assert fetched.to_dictionary() == model.to_dictionary()

    ready = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert ready.status == LoggedModelStatus.READY
    assert ready.last_updated_timestamp >= ready.creation_timestamp

    client.set_logged_model_tags(model.model_id, {"stage": "dev", "owner": "ada"})
    client.delete_logged_model_tag(model.model_id, "owner")
    client.log_model_params(model.model_id, {"depth": "3"})
    after = client.get_logged_model(model.model_id)
    assert after.tags == {"team": "fraud", "stage": "dev"}
    assert after.params == {"lr": "0.1", "depth": "3"}

    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException) as excinfo:
        client.get_logged_model(model.model_id)
    assert excinfo.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_more_than_one_request_of_params(client: MlflowClient, experiment_id: str) -> None:
    # the client sends the first 100 params with the create, the rest to .../params
    params = {f"p{i:03d}": str(i) for i in range(150)}
    model = client.create_logged_model(experiment_id=experiment_id, params=params)
    assert model.params == params
    assert model.name  # a random name when none is given


def test_unknown_models_and_bad_input_are_refused(
    client: MlflowClient, experiment_id: str
) -> None:
    with pytest.raises(MlflowException) as excinfo:
        client.get_logged_model(UNKNOWN_MODEL_ID)
    assert excinfo.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as excinfo:
        client.finalize_logged_model(UNKNOWN_MODEL_ID, LoggedModelStatus.READY)
    assert excinfo.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as excinfo:
        client.create_logged_model(experiment_id="987654321")
    assert excinfo.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as excinfo:
        client.create_logged_model(experiment_id=experiment_id, name="has.dot")
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"
    model = client.create_logged_model(experiment_id=experiment_id)
    with pytest.raises(MlflowException) as excinfo:
        client.delete_logged_model_tag(model.model_id, "absent")
    assert excinfo.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as excinfo:
        client.search_logged_models([experiment_id], filter_string="name = 'a' OR name = 'b'")
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_logged_models(client: MlflowClient, experiment_id: str) -> None:
    other = client.create_experiment(unique("models-other"))
    alpha = client.create_logged_model(
        experiment_id=experiment_id, name="alpha", params={"lr": "0.1"}
    )
    beta = client.create_logged_model(
        experiment_id=experiment_id, name="beta", tags={"stage": "dev"}
    )
    gamma = client.create_logged_model(experiment_id=other, name="gamma")
    client.finalize_logged_model(alpha.model_id, LoggedModelStatus.READY)

    def names(**kwargs) -> list[str]:
        return [m.name for m in client.search_logged_models(**kwargs)]

    assert names(experiment_ids=[experiment_id]) == ["beta", "alpha"]
    assert names(
        experiment_ids=[experiment_id, other], order_by=[{"field_name": "name", "ascending": True}]
    ) == ["alpha", "beta", "gamma"]
    assert names(experiment_ids=[experiment_id], filter_string="status = 'READY'") == ["alpha"]
    assert names(experiment_ids=[experiment_id], filter_string="params.lr = '0.1'") == ["alpha"]
    assert names(experiment_ids=[experiment_id], filter_string="tags.stage IN ('dev')") == ["beta"]
    by_id = f"model_id = '{gamma.model_id}'"
    assert names(experiment_ids=[other], filter_string=by_id) == ["gamma"]

    first = client.search_logged_models([experiment_id], max_results=1)
    assert [m.model_id for m in first] == [beta.model_id]
    assert first.token
    second = client.search_logged_models([experiment_id], max_results=1, page_token=first.token)
    assert [m.model_id for m in second] == [alpha.model_id]
    assert second.token is None

    # the fluent API searches the given experiments too, and returns a list on request
    listed = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    assert [m.name for m in listed] == ["beta", "alpha"]


def test_log_outputs_and_model_metrics(client: MlflowClient, experiment_id: str) -> None:
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run() as run:
        model = mlflow.initialize_logged_model(name="net", params={"layers": "4"})
        assert model.source_run_id == run.info.run_id
        assert model.experiment_id == experiment_id
        assert model.status == LoggedModelStatus.PENDING
        client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=3)])
        mlflow.log_metric("acc", 0.91, step=3, model_id=model.model_id)
        mlflow.log_metric("acc", 0.5, step=1)  # not linked to the model
        mlflow.finalize_logged_model(model.model_id, LoggedModelStatus.READY)

    fetched_run = client.get_run(run.info.run_id)
    outputs = fetched_run.outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(model.model_id, 3)]

    fetched = client.get_logged_model(model.model_id)
    assert fetched.status == LoggedModelStatus.READY
    assert [(m.key, m.value, m.step, m.run_id, m.model_id) for m in fetched.metrics] == [
        ("acc", 0.91, 3, run.info.run_id, model.model_id)
    ]
    found = client.search_logged_models([experiment_id], filter_string="metrics.acc > 0.9")
    assert [m.model_id for m in found] == [model.model_id]
    assert mlflow.last_logged_model().model_id == model.model_id


def test_set_active_model(client: MlflowClient, experiment_id: str) -> None:
    mlflow.set_experiment(experiment_id=experiment_id)
    model = mlflow.initialize_logged_model(name="agent")
    active = mlflow.set_active_model(model_id=model.model_id)
    assert active.model_id == model.model_id
    assert mlflow.get_active_model_id() == model.model_id
    # by name: the client searches the current experiment for a model with that name
    by_name = mlflow.set_active_model(name="agent")
    assert by_name.model_id == model.model_id
    mlflow.clear_active_model()


def test_2x_log_model_appends_to_history(client: MlflowClient, experiment_id: str) -> None:
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    for path in ("model", "model2"):
        mlmodel = Model(
            artifact_path=path,
            run_id=run_id,
            flavors={"python_function": {"loader_module": "mlflow.sklearn", "config": {"x": 1}}},
        )
        client._record_logged_model(run_id, mlmodel)  # what the 2.x log_model path calls

    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model", "model2"]
    assert history[0]["run_id"] == run_id
    assert history[0]["flavors"] == {"python_function": {"loader_module": "mlflow.sklearn"}}
    assert "utc_time_created" in history[0]

    status, body = rest(
        "POST", "runs/log-model", {"run_id": run_id, "model_json": '{"run_id": "x"}'}
    )
    assert status == 400
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_log_model_rest_sequence_without_artifacts(
    client: MlflowClient, experiment_id: str
) -> None:
    """Steps 2, 3, 5 (its GET) and 6 of what a 3.x `<flavor>.log_model` sends (fact sheet §11);
    the artifact PUTs of step 5 need the artifact proxy, which is not served yet."""
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    client.log_param(run_id, "alpha", "0.5")

    status, created = rest(
        "POST",
        "logged-models",
        {
            "experiment_id": experiment_id,
            "name": "model",
            "source_run_id": run_id,
            "params": [{"key": "alpha", "value": "0.5"}],
            "tags": [{"key": "mlflow.source.type", "value": "LOCAL"}],
        },
    )
    assert status == 200
    model_id = created["model"]["info"]["model_id"]
    assert created["model"]["info"]["status"] == "LOGGED_MODEL_PENDING"

    outputs_body = {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]}
    status, body = rest("POST", "runs/outputs", outputs_body)
    assert (status, body) == (200, {})

    status, fetched = rest("GET", f"logged-models/{model_id}")
    assert status == 200
    assert fetched["model"]["info"]["artifact_uri"] == (
        f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"
    )

    status, finalized = rest(
        "PATCH", f"logged-models/{model_id}", {"model_id": model_id, "status": "LOGGED_MODEL_READY"}
    )
    assert status == 200
    assert finalized["model"]["info"]["status"] == "LOGGED_MODEL_READY"

    # the official client reads the result back
    model = client.get_logged_model(model_id)
    assert model.status == LoggedModelStatus.READY
    assert model.params == {"alpha": "0.5"}
    outputs = client.get_run(run_id).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(model_id, 0)]
