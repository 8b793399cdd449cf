"""The Sparsity tab: a run that prunes (``timeline.prune``) draws each group's
``sparsity/<group>`` live, the values the run logged."""

from __future__ import annotations

import numpy as np

import engine
from tests.workbench.conftest import write_tiny
from tests.workbench.helpers import run_to_end

PRUNE = """timeline:
  prune:
    - {start: 2, end: 20, every: 4, from: 0.1, to: 0.8, params: [blocks.0.mlp]}
    - {start: 12, end: 13, to: 0.5, params: ["*.attn.q.weight"], name: q}
"""


def test_a_pruning_run_draws_each_groups_sparsity_on_the_sparsity_tab(
    qtbot, make_main_window, tmp_path
):
    path = write_tiny(tmp_path, steps=24)
    path.write_text(path.read_text(encoding="utf-8") + PRUNE, encoding="utf-8")
    window = make_main_window()
    window.files.load(path)
    assert run_to_end(qtbot, window) == "finished"
    plot = window.plots.sparsity
    assert window.tabs.tabText(window.tabs.indexOf(plot)) == "Sparsity"
    record = engine.open_run(window.last_run_dir)
    for group in ("blocks.0.mlp", "q"):
        ticks, logged = record.scalars(f"sparsity/{group}")
        assert len(ticks) >= 1
        x, y = plot._raw[f"sparsity/{group}"].getOriginalDataset()
        assert np.array_equal(x, ticks) and np.array_equal(y, logged)  # what the run logged
    legend = {label.text for _, label in plot.legend.items}
    assert legend == {"sparsity/blocks.0.mlp", "sparsity/q"}
    assert logged[-1] == 0.5  # q: the share of its zero weights after its one step
