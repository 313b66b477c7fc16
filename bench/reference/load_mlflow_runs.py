"""Loads N synthetic runs into a reference MLflow SQLite backend, for the side-by-side search benchmark.

The schema is created by MLflow's own SqlAlchemyStore (its migrations); the rows are then inserted
in bulk with sqlite3, because logging 100k runs one call at a time through the store takes far
longer than the benchmark itself. The data is the same, value for value, as bench/vs-mlflow.ts
loads into Ledgerflow (see runData there).

usage: python load_mlflow_runs.py <sqlite file> <artifact root> <experiment name> <runs>
prints the experiment id.
"""

import sqlite3
import sys

from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

PARAMS, METRICS, TAGS = 20, 20, 10
P1_VALUES = ["x", "y", "z"]
BASE_TIME = 1_700_000_000_000


def metric_value(i: int, j: int) -> float:
    return ((i * 2654435761 + j * 40503) % 4294967296) / 4294967296


def run_id(i: int) -> str:
    return f"{i:032x}"


def main() -> None:
    db, artifacts, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = SqlAlchemyStore(f"sqlite:///{db}", artifacts)
    exp_id = store.create_experiment(name)
    store.engine.dispose()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    runs, params, tags, metrics, latest = [], [], [], [], []
    for i in range(n):
        rid = run_id(i)
        start = BASE_TIME + i * 1000
        runs.append((rid, f"run-{i}", "UNKNOWN", "", "", "bench", "FINISHED", start, start + 500, "", "active",
                     f"{artifacts}/{exp_id}/{rid}/artifacts", int(exp_id), None))
        for j in range(PARAMS):
            params.append((f"p{j}", P1_VALUES[i % 3] if j == 1 else f"v{(i * 7 + j) % 100}", rid))
        for j in range(TAGS):
            tags.append((f"t{j}", f"tag{(i + j) % 10}", rid))
        tags.append(("mlflow.runName", f"run-{i}", rid))
        for j in range(METRICS):
            v = metric_value(i, j)
            metrics.append((f"m{j}", v, start, rid, 0, 0))
            latest.append((f"m{j}", v, start, 0, 0, rid))
    with con:
        con.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
        con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", metrics)
        con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", latest)
    con.close()
    print(exp_id)


if __name__ == "__main__":
    main()
