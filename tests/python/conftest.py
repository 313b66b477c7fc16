"""Starts one embedded Ledgerflow server for the whole pytest session and points the
official MLflow client at it.

The server is built from this checkout (`node tools/build.mjs --quiet`, skipped when dist/ is
newer than every source), copied to a private directory and started from there on a free port
(--port 0; the port is read from its "listening on" line) with a fresh data directory. It is
stopped at the end of the session, failed or not.
Its output goes to a log file under tmp/ whose tail is printed when something goes wrong
(the directory is then kept for inspection).

With LEDGERFLOW_TEST_URL set (e.g. the nginx URL of `infra/local/cluster.sh up`, as
`npm run test:distributed` does) no server is started: the tests run against that URL.
"""

from __future__ import annotations

import os

# mlflow reads these when it is imported or on its first request, so set them before anything
# imports mlflow. Telemetry would try to reach the internet; retries would turn one server bug
# into minutes of backoff.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
# (LEDGERFLOW_TEST_HTTP_TIMEOUT: more for a cluster on a busy machine, see tools/test-distributed.sh)
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = os.environ.get("LEDGERFLOW_TEST_HTTP_TIMEOUT", "15")
# A fixed user name (getpass reads LOGNAME first), so tests can check mlflow.user; and no
# experiment or run chosen from the outside.
os.environ["LOGNAME"] = "ledgerflow-tester"
os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
os.environ.pop("MLFLOW_RUN_ID", None)

import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = re.compile(r"Ledgerflow \S+ \(embedded\) listening on (http://\S+), data in ")
START_TIMEOUT_S = 30.0
START_ATTEMPTS = 3
NODE = shutil.which("node") or "node"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _newest_source_mtime() -> float:
    newest = 0.0
    for top in ("apps", "libs", "bench"):
        for dirpath, dirnames, filenames in os.walk(ROOT / top):
            dirnames[:] = [d for d in dirnames if d not in ("node_modules", "results") and not d.startswith(".")]
            for f in filenames:
                if f.endswith(".ts") and not f.endswith(".spec.ts") and not f.endswith(".d.ts"):
                    newest = max(newest, os.stat(os.path.join(dirpath, f)).st_mtime)
    return newest


def _ensure_built() -> None:
    """Runs `node tools/build.mjs --quiet` unless dist/ is newer than every source.

    A build empties the shared dist/ first, which would break anyone else's test that is
    running the CLI from it at that moment (Nx runs several test targets at once), so the
    build is skipped when dist/ is already fresh (as after `npm test`'s own build).
    """
    try:
        built_at = (ROOT / "dist" / "package.json").stat().st_mtime
    except OSError:
        built_at = 0.0
    if _newest_source_mtime() <= built_at:
        return
    proc = subprocess.run(
        [NODE, "tools/build.mjs", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"node tools/build.mjs failed:\n{proc.stdout}{proc.stderr}")


def _snapshot_build(into: Path) -> Path:
    """Copies dist/ and bin/ to a private directory under <root>/tmp (so node_modules still
    resolves) and returns the copied CLI: someone else's build can empty the shared dist/ while
    this session's server is loading its modules."""
    shutil.copytree(ROOT / "dist", into / "dist")
    shutil.copytree(ROOT / "bin", into / "bin")
    if not (into / "dist" / "package.json").is_file():  # build.mjs writes it last
        raise RuntimeError("dist/ is incomplete (a build is in progress?)")
    return into / "bin" / "ledgerflow.js"


def _wait_ready(proc: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ledgerflow server exited with {proc.returncode}:\n{_tail(log)}")
        if url is None:
            m = READY_LINE.search(log.read_text(errors="replace"))
            if m:
                url = m.group(1)
        if url is not None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as res:
                    if res.status == 200 and res.read().decode().strip() == "OK":
                        return url
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.1)
    raise RuntimeError(f"ledgerflow server not ready within {START_TIMEOUT_S} s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _start_server(tmp: Path, log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Builds if needed, snapshots the build and starts a server from it; returns it and its URL.
    A snapshot caught half-written by a concurrent build fails to start and is retried.
    `env` adds settings (LEDGERFLOW_*) to the server's environment."""
    problem = ""
    for attempt in range(1, START_ATTEMPTS + 1):
        build_dir = tmp / f"build-{attempt}"
        proc = None
        try:
            _ensure_built()
            cli = _snapshot_build(build_dir)
            with open(log, "wb") as log_fh:
                proc = subprocess.Popen(
                    [NODE, str(cli), "server", "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0", "--data-dir", str(tmp / "data")],
                    cwd=ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **(env or {})},
                )
            return proc, _wait_ready(proc, log)
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            problem = str(e)
            if proc is not None:
                _stop(proc)
            shutil.rmtree(build_dir, ignore_errors=True)
            shutil.rmtree(tmp / "data", ignore_errors=True)
            # A concurrent build may have left dist/ fresh-looking but incomplete: force a clean one.
            (ROOT / "dist" / "package.json").unlink(missing_ok=True)
            time.sleep(attempt)
    raise RuntimeError(f"could not start a ledgerflow server in {START_ATTEMPTS} attempts:\n{problem}")


def _external_server(url: str) -> str:
    """LEDGERFLOW_TEST_URL, once it answers /health (a cluster may still be starting)."""
    url = url.rstrip("/")
    deadline = time.monotonic() + START_TIMEOUT_S
    problem = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as res:
                if res.status == 200 and res.read().decode().strip() == "OK":
                    return url
        except (urllib.error.URLError, OSError) as e:
            problem = str(e)
        time.sleep(0.5)
    pytest.exit(f"LEDGERFLOW_TEST_URL={url} does not answer /health: {problem}", returncode=1)


@pytest.fixture(scope="session")
def ledgerflow_server(request: pytest.FixtureRequest):
    """The base URL of a Ledgerflow server that lives for the whole session."""
    external = os.environ.get("LEDGERFLOW_TEST_URL")
    if external:
        yield _external_server(external)
        return
    (ROOT / "tmp").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pytest-ledgerflow-", dir=ROOT / "tmp"))
    log = tmp / "server.log"
    failed_before = request.session.testsfailed
    proc = None
    try:
        try:
            proc, url = _start_server(tmp, log)
        except RuntimeError as e:
            # Every test needs the server: one clear message instead of an error per test.
            pytest.exit(f"ledgerflow server did not start (files kept in {tmp}): {e}", returncode=1)
        yield url
    finally:
        if proc is not None:
            _stop(proc)
            if request.session.testsfailed > failed_before:
                print(f"\n--- ledgerflow server log ({log}), last lines ---\n{_tail(log)}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


AUTH_ADMIN_PASSWORD = "pytest-admin-password-1"


@pytest.fixture(scope="session")
def ledgerflow_auth_server(request: pytest.FixtureRequest):
    """A second server with auth on (LEDGERFLOW_AUTH=basic, admin `admin`), started on first use.

    LEDGERFLOW_TEST_AUTH_URL names one already running instead (e.g. a cluster's nginx URL with
    auth on and LEDGERFLOW_ADMIN_PASSWORD=AUTH_ADMIN_PASSWORD)."""
    external = os.environ.get("LEDGERFLOW_TEST_AUTH_URL")
    if external:
        yield _external_server(external)
        return
    (ROOT / "tmp").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pytest-ledgerflow-auth-", dir=ROOT / "tmp"))
    log = tmp / "server.log"
    failed_before = request.session.testsfailed
    proc = None
    try:
        proc, url = _start_server(
            tmp, log, {"LEDGERFLOW_AUTH": "basic", "LEDGERFLOW_ADMIN_PASSWORD": AUTH_ADMIN_PASSWORD}
        )
        yield url
    finally:
        if proc is not None:
            _stop(proc)
            if request.session.testsfailed > failed_before:
                print(f"\n--- ledgerflow auth server log ({log}), last lines ---\n{_tail(log)}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def tracking_uri(ledgerflow_server: str) -> str:
    """Points MLflow (fluent API and MlflowClient) at the test server for every test."""
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = ledgerflow_server
    mlflow.set_tracking_uri(ledgerflow_server)
    return ledgerflow_server


@pytest.fixture(autouse=True)
def _no_active_run(tracking_uri: str):
    """A test that fails inside `start_run` must not leave its run active for the next test, and a
    test that points the fluent API at another server (the auth tests) must not leave it there,
    nor the experiment it chose on that server."""
    import mlflow
    from mlflow.tracking import fluent

    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    if mlflow.get_tracking_uri() != tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        fluent._active_experiment_id = None
