"""notebooks/load_test.ipynb runs end to end with small sizes (nbclient), so it cannot rot: it starts an embedded
cluster, ramps concurrency, kills a node halfway, plots, and signs again after the kill."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "load_test.ipynb"


@pytest.fixture
def small_sizes(tmp_path, monkeypatch):
    sizes = {"MPC_LOAD_LEVELS": "1,2", "MPC_LOAD_STEP_S": "5", "MPC_LOAD_SECURITY": "112", "MPC_LOAD_KDF": "min",
             "MPC_LOAD_POOL_DEPTH": "4", "MPC_LOAD_WINDOW_S": "0.5", "MPC_LOAD_OUT_DIR": str(tmp_path)}
    for k, v in sizes.items():
        monkeypatch.setenv(k, v)
    for k in ("MPC_LOAD_STATE_DIR", "MPC_LOAD_ADDRESS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


@pytest.mark.ray
@pytest.mark.slow  # about a minute on 2 cores; 5 s steps leave time to sign after the kill on a loaded machine
def test_load_test_notebook_runs_with_small_sizes(small_sizes):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(small_sizes)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    result = json.loads(text.split("RESULT ", 1)[1].splitlines()[0])
    assert result["requests"] > 0 and result["kill_at_s"] is not None
    assert result["after_kill_ok"] > 0  # the remaining parties kept signing after the node went down
    assert result["pool_points"] > 0
    assert [r["concurrency"] for r in result["levels"]] == [1, 2]
    # the error tables: by type against concurrency level and against the kill (empty when nothing failed)
    assert "errors by type and concurrency level" in text and "errors by type and phase" in text
    assert all(set(by_level) == {"c=1", "c=2"} for by_level in result["errors_by_type"].values())
    assert sum(map(sum, (t.values() for t in result["errors_by_type"].values()))) == result["errors"]
    assert sum(map(sum, (t.values() for t in result["errors_by_phase"].values()))) == result["errors"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot was drawn
    assert (small_sizes / "load_test.png").stat().st_size > 10_000
    assert os.path.exists(small_sizes / "load_test.json")
