"""The official MLflow 3 Python client against the Ledgerflow model registry (fact sheet §5):
registering from a run and from a 3.x logged model, versions, stages with archiving, aliases,
tags, search, rename, delete, and loading `models:/name/Production` / `models:/name@alias`.

Every test makes its own uniquely named models, since all tests share one server.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
import uuid
import warnings

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

warnings.filterwarnings("ignore", category=FutureWarning)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Constant(mlflow.pyfunc.PythonModel):
    """Answers a fixed value, so a loaded model shows which version it came from."""

    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, context, model_input, params=None):  # noqa: ARG002
        return [self.value] * len(model_input)


@pytest.fixture
def client() -> MlflowClient:
    return MlflowClient()


@pytest.fixture
def experiment(client: MlflowClient) -> str:
    exp_id = client.create_experiment(unique("registry"))
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def http_timeout() -> float:
    """The client's request timeout (conftest: more for a cluster on a busy machine)."""
    return float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "15"))


def rest(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    url = f"{os.environ['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=http_timeout()) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def get_raw(path: str) -> tuple[int, bytes]:
    """GET a server path (not under the REST API prefix), returning status and raw body."""
    url = f"{os.environ['MLFLOW_TRACKING_URI']}{path}"
    try:
        with urllib.request.urlopen(url, timeout=http_timeout()) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def log_constant_model(value: int, registered_model_name: str | None = None):
    """pyfunc.log_model in a run (3.x: a logged model under the experiment); returns (run_id, info)."""
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=Constant(value),
            pip_requirements=[],
            registered_model_name=registered_model_name,
        )
    return run.info.run_id, info


def predict(uri: str) -> int:
    return int(mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"x": [1]}))[0])


def test_register_from_a_logged_model_and_load_by_stage_and_alias(
    client: MlflowClient, experiment: str
) -> None:
    name = unique("clf")
    run_id, info = log_constant_model(1, registered_model_name=name)
    v1 = client.get_model_version(name, "1")
    assert v1.status == "READY"
    assert v1.run_id == run_id
    # the client's ModelVersion does not read model_id from the wire (3.17); the server sends it
    status, body = rest("GET", f"model-versions/get?name={name}&version=1")
    assert status == 200 and body["model_version"]["model_id"] == info.model_id
    assert v1.source == f"models:/{info.model_id}"
    assert client.get_model_version_download_uri(name, "1") == (
        f"mlflow-artifacts:/{experiment}/models/{info.model_id}/artifacts"
    )

    # a second logged model, registered explicitly
    _, info2 = log_constant_model(2)
    v2 = mlflow.register_model(info2.model_uri, name)
    assert v2.version == "2"
    assert client.get_model_version(name, "2").source == f"models:/{info2.model_id}"
    # the logged model lists the registry versions made from it, as MLflow's server records them
    # (register_model then appends the same entry again on the client side, as against MLflow)
    tagged = json.loads(client.get_logged_model(info2.model_id).tags["mlflow.modelVersions"])
    assert tagged[0] == {"name": name, "version": "2"}
    assert all(entry == {"name": name, "version": "2"} for entry in tagged)

    client.transition_model_version_stage(name, "1", "Production")
    client.set_registered_model_alias(name, "champion", "2")
    assert predict(f"models:/{name}/Production") == 1
    assert predict(f"models:/{name}@champion") == 2
    assert predict(f"models:/{name}/1") == 1
    assert predict(f"models:/{name}/latest") == 2

    # the UI's /model-versions/get-artifact serves a version's files from its logged model
    for prefix in ("", "/ajax-api/2.0/mlflow"):
        status, body = get_raw(
            f"{prefix}/model-versions/get-artifact?name={name}&version=2&path=MLmodel"
        )
        assert status == 200
        assert f"model_id: {info2.model_id}" in body.decode()
    status, body = get_raw(f"/model-versions/get-artifact?name={name}&version=9&path=MLmodel")
    assert status == 404 and json.loads(body)["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    # promotion with archiving: 2 goes to Production, 1 is archived, in one step
    promoted = client.transition_model_version_stage(
        name, "2", "Production", archive_existing_versions=True
    )
    assert promoted.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert predict(f"models:/{name}/Production") == 2


def test_register_from_a_run(client: MlflowClient, experiment: str) -> None:  # noqa: ARG001
    name = unique("from-run")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model")
        mlflow.pyfunc.save_model(path, python_model=Constant(7), pip_requirements=[])
        with mlflow.start_run() as run:
            mlflow.log_artifacts(path, artifact_path="model")
        with open(os.path.join(path, "MLmodel"), "rb") as f:
            mlmodel = f.read()
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert mv.version == "1"
    assert mv.run_id == run.info.run_id
    assert client.get_model_version_download_uri(name, "1") == (
        f"{run.info.artifact_uri}/model"
    )
    client.transition_model_version_stage(name, "1", "Staging")
    assert predict(f"models:/{name}/Staging") == 7
    # the version's files, from the run's artifacts, through /model-versions/get-artifact
    status, body = get_raw(f"/model-versions/get-artifact?name={name}&version=1&path=MLmodel")
    assert status == 200 and body == mlmodel


def test_versions_stages_and_latest(client: MlflowClient, experiment: str) -> None:  # noqa: ARG001
    name = unique("versions")
    run_id, info = log_constant_model(3)
    client.create_registered_model(name, tags={"team": "risk"}, description="scoring")
    for _ in range(4):
        client.create_model_version(name, info.model_uri, run_id=run_id, model_id=info.model_id)
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "2", "Production")
    client.transition_model_version_stage(name, "3", "Production")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        latest = client.get_latest_versions(name, stages=["Production"])
        assert [v.version for v in latest] == ["3"]
        every = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert every == {"Staging": "1", "Production": "3", "None": "4"}
    # without archiving two versions may share a stage; with it only the promoted one stays
    assert client.get_model_version(name, "2").current_stage == "Production"
    client.transition_model_version_stage(name, "4", "production", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name='{name}'")}
    assert stages == {"1": "Staging", "2": "Archived", "3": "Archived", "4": "Production"}

    with pytest.raises(MlflowException, match="Invalid Model Version stage"):
        client.transition_model_version_stage(name, "1", "Gold")

    # numbers are never reused, even after a delete
    client.delete_model_version(name, "4")
    again = client.create_model_version(
        name, info.model_uri, run_id=run_id, model_id=info.model_id
    )
    # as MLflow 3.17's server: a logged-model source needs the model_id that contains it
    with pytest.raises(MlflowException, match="model_id request parameter"):
        client.create_model_version(name, info.model_uri, run_id=run_id)
    assert again.version == "5"
    with pytest.raises(MlflowException, match="not found"):
        client.get_model_version(name, "4")


def test_aliases_tags_search_rename_delete(client: MlflowClient, experiment: str) -> None:  # noqa: ARG001
    name = unique("lifecycle")
    run_id, info = log_constant_model(4)
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, info.model_uri, run_id=run_id, model_id=info.model_id)

    # aliases
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_registered_model(name).aliases == {"champion": "2"}
    assert client.get_model_version(name, "2").aliases == ["champion"]
    with pytest.raises(MlflowException, match="reserved"):
        client.set_registered_model_alias(name, "latest", "1")
    with pytest.raises(MlflowException, match="reserved"):
        client.set_registered_model_alias(name, "v1", "1")
    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException, match="alias champion not found"):
        client.get_model_version_by_alias(name, "champion")

    # tags
    client.set_registered_model_tag(name, "owner", "ana")
    client.set_model_version_tag(name, "1", "validated", "yes")
    assert client.get_registered_model(name).tags == {"owner": "ana"}
    assert client.get_model_version(name, "1").tags == {"validated": "yes"}
    client.delete_model_version_tag(name, "1", "validated")
    client.delete_registered_model_tag(name, "owner")
    assert client.get_registered_model(name).tags == {}
    assert client.get_model_version(name, "1").tags == {}

    # descriptions
    client.update_registered_model(name, description="fraud scorer")
    client.update_model_version(name, "2", description="retrained")
    assert client.get_registered_model(name).description == "fraud scorer"
    assert client.get_model_version(name, "2").description == "retrained"

    # search with filters
    client.set_registered_model_tag(name, "domain", "payments")
    found = client.search_registered_models(filter_string="tags.domain = 'payments'")
    assert name in [m.name for m in found]
    assert [m.name for m in client.search_registered_models(filter_string=f"name = '{name}'")] == [
        name
    ]
    prefix = name[: len("lifecycle-") + 4]
    assert name in [
        m.name for m in client.search_registered_models(filter_string=f"name LIKE '{prefix}%'")
    ]
    versions = client.search_model_versions(f"name = '{name}' and version_number > 1")
    assert [v.version for v in versions] == ["2"]
    assert len(client.search_model_versions(f"run_id = '{run_id}' and name = '{name}'")) == 2
    with pytest.raises(MlflowException):
        client.search_registered_models(filter_string="metrics.x > 1")

    # rename: versions follow
    new_name = unique("renamed")
    client.rename_registered_model(name, new_name)
    assert client.get_model_version(new_name, "2").name == new_name
    with pytest.raises(MlflowException, match="not found"):
        client.get_registered_model(name)

    # duplicate names are refused
    with pytest.raises(MlflowException, match="already exists"):
        client.create_registered_model(new_name)

    # delete: gone, versions included
    client.delete_registered_model(new_name)
    with pytest.raises(MlflowException, match="not found"):
        client.get_registered_model(new_name)
    assert client.search_model_versions(f"name = '{new_name}'") == []


def test_expected_version_guards_a_stale_transition(client: MlflowClient, experiment: str) -> None:  # noqa: ARG001
    name = unique("guarded")
    run_id, info = log_constant_model(5)
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, info.model_uri, run_id=run_id, model_id=info.model_id)
    status, body = rest("GET", f"registered-models/get?name={name}")
    assert status == 200
    seen = body["registered_model"]["revision"]
    status, _ = rest(
        "POST",
        "model-versions/transition-stage",
        {"name": name, "version": "1", "stage": "Production", "expected_version": seen,
         "comment": "approved in review"},
    )
    assert status == 200
    # a second UI still holding the old revision is refused, and told what happened
    status, body = rest(
        "POST",
        "model-versions/transition-stage",
        {"name": name, "version": "2", "stage": "Production", "expected_version": seen,
         "archive_existing_versions": True},
    )
    assert status == 409
    assert body["error_code"] == "RESOURCE_CONFLICT"
    assert "Production: 1" in body["message"]
    assert client.get_model_version(name, "2").current_stage == "None"


def test_prompt_registry(client: MlflowClient) -> None:
    """MLflow 3's prompt registry rides on registered models: prompts are hidden from model
    searches, their versions carry a placeholder source and the template in a tag."""
    name = unique("greeting")
    first = mlflow.genai.register_prompt(name=name, template="Hello {{name}}!", commit_message="v1")
    assert first.version == 1
    second = mlflow.genai.register_prompt(name=name, template="Hi {{name}}, welcome.")
    assert second.version == 2
    loaded = mlflow.genai.load_prompt(f"prompts:/{name}/1")
    assert loaded.format(name="Ana") == "Hello Ana!"
    mlflow.genai.set_prompt_alias(name, alias="production", version=2)
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").format(name="Bo") == (
        "Hi Bo, welcome."
    )
    # prompts do not show up as models
    assert name not in [m.name for m in client.search_registered_models()]
    # a prompt version cannot point at artifacts
    status, body = rest(
        "POST",
        "model-versions/create",
        {"name": name, "source": "mlflow-artifacts:/0/x/artifacts",
         "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
    )
    assert status == 400 and "Invalid prompt source" in body["message"]
