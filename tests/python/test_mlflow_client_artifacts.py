"""The official MLflow client's artifact calls through Ledgerflow's artifact proxy, on both blob
stores: the local folder of the session server (conftest.py) and S3, served by a SeaweedFS that
this module starts (infra/local/seaweedfs.sh, which builds it once from the Go module proxy) with a
second Ledgerflow server configured for it. Every file must round-trip byte for byte.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
import uuid
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from conftest import NODE, ROOT, _ensure_built, _snapshot_build, _stop, _tail, _wait_ready

SEAWEEDFS = ROOT / "infra" / "local" / "seaweedfs.sh"


def _free_port_block(count: int) -> int:
    """A run of `count` consecutive free ports on 127.0.0.1 (SeaweedFS binds seven)."""
    import random

    for _ in range(50):
        base = random.randint(20000, 50000)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block for SeaweedFS")


@pytest.fixture(scope="module")
def s3_server():
    """A Ledgerflow server whose artifacts live in S3 (SeaweedFS on 127.0.0.1). Against an external
    server (LEDGERFLOW_TEST_URL: the distributed cluster, whose artifact store is S3) that one."""
    external = os.environ.get("LEDGERFLOW_TEST_URL")
    if external:
        yield external.rstrip("/")
        return
    (ROOT / "tmp").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pytest-ledgerflow-s3-", dir=ROOT / "tmp"))
    weed_dir = tmp / "weed"
    weed_dir.mkdir()
    started = subprocess.run(
        ["bash", str(SEAWEEDFS), "start", str(weed_dir), str(_free_port_block(8))],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if started.returncode != 0:
        pytest.fail(f"SeaweedFS did not start:\n{started.stdout}{started.stderr}")
    info = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    proc = None
    log = tmp / "server.log"
    try:
        _ensure_built()
        cli = _snapshot_build(tmp / "build")
        env = dict(
            os.environ,
            LEDGERFLOW_ARTIFACT_STORE="s3",
            LEDGERFLOW_S3_ENDPOINT=info["endpoint"],
            LEDGERFLOW_S3_BUCKET="mlflow-artifacts",
            LEDGERFLOW_S3_PREFIX="ledgerflow/artifacts",
            LEDGERFLOW_S3_ACCESS_KEY=info["access_key"],
            LEDGERFLOW_S3_SECRET_KEY=info["secret_key"],
        )
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [NODE, str(cli), "server", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp / "data")],
                cwd=ROOT,
                env={**env, "LEDGERFLOW_GRPC_PORT": "0"},
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        yield _wait_ready(proc, log)
    except Exception:
        print(f"\n--- S3 ledgerflow server log ---\n{_tail(log)}")
        raise
    finally:
        if proc is not None:
            _stop(proc)
        subprocess.run(["bash", str(SEAWEEDFS), "stop", str(weed_dir)], check=False, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(autouse=True)
def _restore_tracking_uri():
    """Whatever a test points the client at, the next test (in any module) gets the session's."""
    before_env = os.environ.get("MLFLOW_TRACKING_URI")
    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)
    if before_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before_env


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, ledgerflow_server: str):
    """Points the client at the server of one blob store for the test, then back."""
    url = ledgerflow_server if request.param == "local" else request.getfixturevalue("s3_server")
    mlflow.set_tracking_uri(url)
    os.environ["MLFLOW_TRACKING_URI"] = url
    try:
        yield request.param
    finally:
        mlflow.set_tracking_uri(ledgerflow_server)
        os.environ["MLFLOW_TRACKING_URI"] = ledgerflow_server


def _write_tree(root: Path) -> None:
    """A nested directory with binary, text, empty and oddly named files."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "top.txt").write_text("top level\n")
    (root / "weights.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (root / "sub" / "data.json").write_text(json.dumps({"a": [1, 2, 3]}))
    (root / "sub" / "empty.dat").write_bytes(b"")
    (root / "sub" / "deeper" / "name with spaces & ümlaut.csv").write_text("x,y\n1,2\n")


def _assert_same_tree(a: Path, b: Path) -> None:
    cmp = filecmp.dircmp(a, b)
    assert not cmp.left_only and not cmp.right_only and not cmp.funny_files, cmp.report()
    for name in cmp.common_files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for sub in cmp.common_dirs:
        _assert_same_tree(a / sub, b / sub)


def test_log_artifact_and_download_file_byte_for_byte(store: str, tmp_path: Path):
    payload = os.urandom(5 * 1024 * 1024 + 3)
    src = tmp_path / "model.bin"
    src.write_bytes(payload)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src))
        mlflow.log_artifact(str(src), artifact_path="nested/dir")
    client = MlflowClient()
    out = Path(client.download_artifacts(run.info.run_id, "model.bin", str(tmp_path / "out")))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(payload).hexdigest()
    out2 = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="nested/dir/model.bin", dst_path=str(tmp_path / "out2")))
    assert out2.read_bytes() == payload


def test_log_artifacts_nested_dir_list_and_download_dir(store: str, tmp_path: Path):
    src = tmp_path / "tree"
    _write_tree(src)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src), artifact_path="outputs")
    client = MlflowClient()
    top = client.list_artifacts(run.info.run_id)
    assert [(f.path, f.is_dir) for f in top] == [("outputs", True)]
    listed = client.list_artifacts(run.info.run_id, "outputs")
    assert [(f.path, f.is_dir, f.file_size) for f in listed] == [
        ("outputs/sub", True, None),
        ("outputs/top.txt", False, len("top level\n")),
        ("outputs/weights.bin", False, 3 * 1024 * 1024 + 17),
    ]
    assert client.list_artifacts(run.info.run_id, "outputs/top.txt") == []
    out = Path(client.download_artifacts(run.info.run_id, "outputs", str(tmp_path / "dl")))
    _assert_same_tree(src, out)


def test_log_dict_and_log_text_round_trip(store: str):
    data = {"params": {"lr": 0.01, "layers": [64, 32]}, "name": "ünïcode ✓"}
    with mlflow.start_run() as run:
        mlflow.log_dict(data, "config/params.json")
        mlflow.log_dict(data, "config/params.yaml")
        mlflow.log_text("line one\nline two\n", "notes/readme.md")
    base = f"runs:/{run.info.run_id}"
    assert mlflow.artifacts.load_dict(f"{base}/config/params.json") == data
    assert yaml.safe_load(mlflow.artifacts.load_text(f"{base}/config/params.yaml")) == data
    assert mlflow.artifacts.load_text(f"{base}/notes/readme.md") == "line one\nline two\n"


def test_run_artifact_list_endpoint_and_get_artifact(store: str, tmp_path: Path):
    src = tmp_path / "hello.txt"
    src.write_text("hello artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src), artifact_path="docs")
    url = mlflow.get_tracking_uri()
    run_id = run.info.run_id
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=docs") as res:
        body = json.loads(res.read())
    assert body == {
        "root_uri": run.info.artifact_uri,
        "files": [{"path": "docs/hello.txt", "is_dir": False, "file_size": 15}],
    }
    with urllib.request.urlopen(f"{url}/get-artifact?run_id={run_id}&path=docs/hello.txt") as res:
        assert res.read() == b"hello artifacts"
        assert res.headers["Content-Disposition"] == "attachment; filename=hello.txt"
        assert res.headers["Content-Type"] == "text/plain"
        assert res.headers["X-Content-Type-Options"] == "nosniff"


def test_delete_artifacts_through_the_proxy(store: str, tmp_path: Path):
    src = tmp_path / "tree"
    _write_tree(src)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src))
    repo = mlflow.store.artifact.artifact_repository_registry.get_artifact_repository(run.info.artifact_uri)
    repo.delete_artifacts("sub")
    names = [f.path for f in MlflowClient().list_artifacts(run.info.run_id)]
    assert names == ["top.txt", "weights.bin"]


def test_s3_multipart_upload_over_100_mb(
    s3_server: str, ledgerflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The client's proxy multipart upload: mpu/create hands out presigned part URLs to S3, the
    client PUTs the parts there itself, and mpu/complete assembles them."""
    size = 105 * 1024 * 1024 + 5
    src = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(src, "wb") as fh:
        chunk = os.urandom(1024 * 1024)
        left = size
        while left > 0:
            piece = chunk[: min(left, len(chunk))]
            fh.write(piece)
            digest.update(piece)
            left -= len(piece)
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(100 * 1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(10 * 1024 * 1024))
    mlflow.set_tracking_uri(s3_server)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", s3_server)
    calls: list[str] = []
    from mlflow.store.artifact import mlflow_artifacts_repo as repo_mod

    original = repo_mod.MlflowArtifactsRepository.create_multipart_upload

    def spy(self, *args, **kwargs):
        calls.append("create")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(repo_mod.MlflowArtifactsRepository, "create_multipart_upload", spy)
    try:
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(src), artifact_path="ckpt")
    finally:
        mlflow.set_tracking_uri(ledgerflow_server)
    assert calls == ["create"]
    out = Path(MlflowClient(tracking_uri=s3_server).download_artifacts(run.info.run_id, "ckpt/big.bin", str(tmp_path / "dl")))
    got = hashlib.sha256()
    with open(out, "rb") as fh:
        while block := fh.read(1024 * 1024):
            got.update(block)
    assert out.stat().st_size == size
    assert got.hexdigest() == digest.hexdigest()


def test_local_store_answers_multipart_with_501_and_the_client_falls_back(
    ledgerflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1024")
    payload = os.urandom(4096)
    src = tmp_path / f"{uuid.uuid4().hex}.bin"
    src.write_bytes(payload)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src))
    out = Path(MlflowClient().download_artifacts(run.info.run_id, src.name, str(tmp_path / "dl")))
    assert out.read_bytes() == payload
