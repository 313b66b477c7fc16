"""The official MLflow client against a Ledgerflow server with auth on (LEDGERFLOW_AUTH=basic):
basic credentials and API tokens for tracking and artifact calls, PERMISSION_DENIED for a READ
user's writes, and MLflow's own auth client (get_app_client("basic-auth")) managing users and
permissions."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid

import mlflow
import mlflow.server
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import AUTH_ADMIN_PASSWORD

PASSWORD = "pytest-user-password"


def _as(monkeypatch: pytest.MonkeyPatch, username: str | None = None, password: str | None = None, token: str | None = None) -> None:
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    if username is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or "")
    if token is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)


def _auth_client(url: str):
    return mlflow.server.get_app_client("basic-auth", tracking_uri=url)


def _new_user(monkeypatch: pytest.MonkeyPatch, url: str, prefix: str) -> str:
    _as(monkeypatch, "admin", AUTH_ADMIN_PASSWORD)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    user = _auth_client(url).create_user(name, PASSWORD)
    assert user.username == name and user.is_admin is False
    return name


def _create_token(url: str, username: str) -> str:
    req = urllib.request.Request(
        f"{url}/api/2.0/ledgerflow/tokens/create",
        data=json.dumps({"name": "pytest"}).encode(),
        headers={
            "content-type": "application/json",
            "authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode(),
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())["token"]


def _tracking_and_artifacts(url: str, tmp_path, label: str) -> str:
    client = MlflowClient(tracking_uri=url)
    exp_id = client.create_experiment(f"auth-{label}-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp_id)
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_metric(run_id, "loss", 0.25, step=1)
    client.log_batch(run_id, metrics=[mlflow.entities.Metric("acc", 0.9, 0, 2)])
    f = tmp_path / f"{label}.txt"
    f.write_text(f"hello {label}")
    client.log_artifact(run_id, str(f))
    assert [a.path for a in client.list_artifacts(run_id)] == [f"{label}.txt"]
    out = client.download_artifacts(run_id, f"{label}.txt", str(tmp_path / "dl"))
    assert open(out).read() == f"hello {label}"
    client.set_terminated(run_id)
    got = client.get_run(run_id)
    assert got.data.params == {"lr": "0.1"} and got.data.metrics["loss"] == 0.25
    return run_id


def test_anonymous_calls_are_refused(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _as(monkeypatch)
    with pytest.raises(MlflowException) as e:
        MlflowClient(tracking_uri=ledgerflow_auth_server).search_experiments()
    assert e.value.error_code == "UNAUTHENTICATED"


def test_basic_auth_tracking_and_artifacts(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    alice = _new_user(monkeypatch, ledgerflow_auth_server, "alice")
    _as(monkeypatch, alice, PASSWORD)
    run_id = _tracking_and_artifacts(ledgerflow_auth_server, tmp_path, "basic")
    # the run records who made it
    assert MlflowClient(tracking_uri=ledgerflow_auth_server).get_run(run_id).info.status == "FINISHED"
    _as(monkeypatch, alice, "wrong-password-123")
    with pytest.raises(MlflowException) as e:
        MlflowClient(tracking_uri=ledgerflow_auth_server).get_run(run_id)
    assert e.value.error_code == "UNAUTHENTICATED"


def test_token_auth_tracking_and_artifacts(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    carol = _new_user(monkeypatch, ledgerflow_auth_server, "carol")
    token = _create_token(ledgerflow_auth_server, carol)
    _as(monkeypatch, token=token)
    _tracking_and_artifacts(ledgerflow_auth_server, tmp_path, "token")


def test_read_user_is_denied_writes_until_granted(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    url = ledgerflow_auth_server
    owner = _new_user(monkeypatch, url, "owner")
    reader = _new_user(monkeypatch, url, "reader")
    _as(monkeypatch, owner, PASSWORD)
    client = MlflowClient(tracking_uri=url)
    exp_id = client.create_experiment(f"auth-shared-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp_id).info.run_id

    # default permission READ: the reader can read, not write
    _as(monkeypatch, reader, PASSWORD)
    client = MlflowClient(tracking_uri=url)
    assert client.get_run(run_id).info.run_id == run_id
    for write in (
        lambda: client.log_metric(run_id, "loss", 1.0),
        lambda: client.set_tag(run_id, "k", "v"),
        lambda: client.create_run(exp_id),
        lambda: client.delete_run(run_id),
    ):
        with pytest.raises(MlflowException) as e:
            write()
        assert e.value.error_code == "PERMISSION_DENIED"
    f = tmp_path / "denied.txt"
    f.write_text("x")
    # the artifact repository raises requests' HTTPError with the server's answer
    with pytest.raises(requests.HTTPError) as http_error:
        client.log_artifact(run_id, str(f))
    assert http_error.value.response.status_code == 403
    assert "Permission denied" in str(http_error.value)

    # the owner (MANAGE as creator) grants EDIT with MLflow's auth client; then the write works
    _as(monkeypatch, owner, PASSWORD)
    auth = _auth_client(url)
    auth.grant_user_permission(reader, "experiment", exp_id, "EDIT")
    result = auth.get_user_permission(reader, "experiment", exp_id)
    assert (result.allowed, result.permission) == (True, "EDIT")
    _as(monkeypatch, reader, PASSWORD)
    MlflowClient(tracking_uri=url).log_metric(run_id, "loss", 1.0)
    with pytest.raises(MlflowException) as e:
        MlflowClient(tracking_uri=url).delete_run(run_id)  # EDIT does not allow delete
    assert e.value.error_code == "PERMISSION_DENIED"

    # a non-admin cannot manage users
    with pytest.raises(MlflowException) as e:
        _auth_client(url).create_user(f"x-{uuid.uuid4().hex[:6]}", PASSWORD)
    assert e.value.error_code == "PERMISSION_DENIED"


def test_auth_client_manages_users(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = ledgerflow_auth_server
    name = _new_user(monkeypatch, url, "dave")
    auth = _auth_client(url)
    assert auth.get_user(name).username == name
    auth.update_user_admin(name, True)
    assert auth.get_user(name).is_admin is True
    auth.update_user_password(name, "a-new-password-99")
    _as(monkeypatch, name, "a-new-password-99")
    assert MlflowClient(tracking_uri=url).search_experiments() is not None
    _as(monkeypatch, "admin", AUTH_ADMIN_PASSWORD)
    auth.delete_user(name)
    with pytest.raises(MlflowException) as e:
        auth.get_user(name)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_read_user_is_denied_registry_writes_until_granted(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = ledgerflow_auth_server
    owner = _new_user(monkeypatch, url, "regowner")
    reader = _new_user(monkeypatch, url, "regreader")
    _as(monkeypatch, owner, PASSWORD)
    client = MlflowClient(tracking_uri=url)
    exp_id = client.create_experiment(f"auth-reg-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp_id).info.run_id
    name = f"auth-model-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)

    # default permission READ: the reader reads the model, every write is PERMISSION_DENIED
    _as(monkeypatch, reader, PASSWORD)
    client = MlflowClient(tracking_uri=url)
    assert client.get_registered_model(name).name == name
    assert client.get_model_version(name, "1").version == "1"
    for write in (
        lambda: client.update_registered_model(name, description="mine now"),
        lambda: client.set_registered_model_tag(name, "k", "v"),
        lambda: client.set_registered_model_alias(name, "champion", "1"),
        lambda: client.transition_model_version_stage(name, "1", "Production"),
        lambda: client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id),
        lambda: client.set_model_version_tag(name, "1", "k", "v"),
        lambda: client.rename_registered_model(name, f"{name}-stolen"),
        lambda: client.delete_model_version(name, "1"),
        lambda: client.delete_registered_model(name),
    ):
        with pytest.raises(MlflowException) as e:
            write()
        assert e.value.error_code == "PERMISSION_DENIED"
    assert client.get_registered_model(name).description in (None, "")

    # the owner grants EDIT on the model with MLflow's auth client: edits work, deletes do not
    _as(monkeypatch, owner, PASSWORD)
    _auth_client(url).grant_user_permission(reader, "registered_model", name, "EDIT")
    _as(monkeypatch, reader, PASSWORD)
    client = MlflowClient(tracking_uri=url)
    client.update_registered_model(name, description="edited by the reader")
    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    with pytest.raises(MlflowException) as e:
        client.delete_registered_model(name)
    assert e.value.error_code == "PERMISSION_DENIED"


def test_searches_never_show_what_the_caller_may_not_read(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = ledgerflow_auth_server
    owner = _new_user(monkeypatch, url, "searchowner")
    reader = _new_user(monkeypatch, url, "searcher")
    _as(monkeypatch, owner, PASSWORD)
    client = MlflowClient(tracking_uri=url)
    auth = _auth_client(url)
    tag = uuid.uuid4().hex[:8]
    visible, hidden = [], []
    for i in range(4):
        exp_id = client.create_experiment(f"search-{tag}-{i}")
        run_id = client.create_run(exp_id).info.run_id
        name = f"search-{tag}-model-{i}"
        client.create_registered_model(name)
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        if i % 2:
            auth.grant_user_permission(reader, "experiment", exp_id, "NO_PERMISSIONS")
            auth.grant_user_permission(reader, "registered_model", name, "NO_PERMISSIONS")
            hidden.append((exp_id, name))
        else:
            visible.append((exp_id, name))
    all_ids = [e for e, _ in visible + hidden]

    _as(monkeypatch, reader, PASSWORD)
    client = MlflowClient(tracking_uri=url)
    # one item per page: the filtering happens inside the query, so paging never skips or leaks
    exps = client.search_experiments(filter_string=f"name LIKE 'search-{tag}-%'", max_results=1)
    seen = list(exps)
    while exps.token:
        exps = client.search_experiments(filter_string=f"name LIKE 'search-{tag}-%'", max_results=1, page_token=exps.token)
        seen.extend(exps)
    assert sorted(e.experiment_id for e in seen) == sorted(e for e, _ in visible)
    runs = client.search_runs(all_ids, max_results=1)
    run_exps = [r.info.experiment_id for r in runs]
    while runs.token:
        runs = client.search_runs(all_ids, max_results=1, page_token=runs.token)
        run_exps.extend(r.info.experiment_id for r in runs)
    assert sorted(run_exps) == sorted(e for e, _ in visible)
    models = client.search_registered_models(filter_string=f"name LIKE 'search-{tag}-%'")
    assert sorted(m.name for m in models) == sorted(n for _, n in visible)
    versions = client.search_model_versions(f"name LIKE 'search-{tag}-%'")
    assert sorted(v.name for v in versions) == sorted(n for _, n in visible)
    for exp_id, name in hidden:
        with pytest.raises(MlflowException) as e:
            client.get_experiment(exp_id)
        assert e.value.error_code == "PERMISSION_DENIED"
        with pytest.raises(MlflowException) as e:
            client.get_registered_model(name)
        assert e.value.error_code == "PERMISSION_DENIED"

    # the owner sees all of them
    _as(monkeypatch, owner, PASSWORD)
    owner_view = MlflowClient(tracking_uri=url).search_registered_models(filter_string=f"name LIKE 'search-{tag}-%'")
    assert len(owner_view) == 4


@pytest.mark.parametrize("credential", ["basic", "token"])
def test_fluent_workflow_of_a_non_admin(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path, credential: str) -> None:
    """The everyday fluent API as a plain user: set_experiment creates a new experiment (its
    get-by-name must answer RESOURCE_DOES_NOT_EXIST, not PERMISSION_DENIED), then a run with an
    artifact, then a registered model version from it, with basic credentials or a token."""
    url = ledgerflow_auth_server
    user = _new_user(monkeypatch, url, f"fluent{credential}")
    if credential == "basic":
        _as(monkeypatch, user, PASSWORD)
    else:
        _as(monkeypatch, token=_create_token(url, user))
    mlflow.set_tracking_uri(url)
    name = f"fluent-{credential}-{uuid.uuid4().hex[:8]}"
    exp = mlflow.set_experiment(name)
    assert mlflow.set_experiment(name).experiment_id == exp.experiment_id
    f = tmp_path / "notes.txt"
    f.write_text("fluent")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("loss", 0.5)
        mlflow.log_artifact(str(f))
    model = f"fluent-{credential}-model-{uuid.uuid4().hex[:6]}"
    client = MlflowClient(tracking_uri=url)
    client.create_registered_model(model)
    version = client.create_model_version(model, f"{run.info.artifact_uri}/notes.txt", run_id=run.info.run_id)
    assert version.version == "1"
    assert client.get_run(run.info.run_id).data.params == {"lr": "0.1"}
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["notes.txt"]


class _Constant(mlflow.pyfunc.PythonModel):
    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, context, model_input, params=None):  # noqa: ARG002
        return [self.value] * len(model_input)


def test_log_register_and_load_a_model_as_plain_users(ledgerflow_auth_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3.x log_model (logged model, its artifacts, registration from models:/m-...) by a plain
    user, loaded by another user with READ (models:/name/1 and @alias), who may not register."""
    import pandas as pd

    url = ledgerflow_auth_server
    author = _new_user(monkeypatch, url, "modeler")
    reader = _new_user(monkeypatch, url, "consumer")
    _as(monkeypatch, author, PASSWORD)
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(f"auth-models-{uuid.uuid4().hex[:8]}")
    name = f"auth-pyfunc-{uuid.uuid4().hex[:6]}"
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=_Constant(7), pip_requirements=[], registered_model_name=name)
    MlflowClient(tracking_uri=url).set_registered_model_alias(name, "champion", "1")

    # default permission READ: the reader loads it both ways, and may not register a version
    _as(monkeypatch, reader, PASSWORD)
    for uri in (f"models:/{name}/1", f"models:/{name}@champion"):
        assert list(mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"x": [1, 2]}))) == [7, 7]
    with pytest.raises(MlflowException) as e:
        MlflowClient(tracking_uri=url).create_model_version(name, info.model_uri)
    assert e.value.error_code == "PERMISSION_DENIED"
