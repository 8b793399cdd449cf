"""How the workbench's process trains beside its GUI thread (measured in docs/benchmarks.md,
"Workbench responsiveness").

``configure_process`` runs before torch is imported (``python -m workbench`` calls it first):

- every run the window trains has its thread (and the OpenMP threads it starts) at
  ``TRAINING_NICENESS`` below the GUI thread, so a repaint gets a core at once instead of half of
  one while it holds the GIL the training thread then waits for;
- on a machine with ``SMALL_CPU`` cores or fewer, OpenMP threads that wait sleep
  (``OMP_WAIT_POLICY=PASSIVE``) instead of spinning on the core the GUI needs, for specs that
  ask for more than one thread (``limit_threads`` gives the others one).

Importing this module imports neither torch nor Qt.
"""

from __future__ import annotations

import os

SMALL_CPU = 2  # cores
TRAINING_NICENESS = 10
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}


def configure_process(cores: int | None = None, environ: dict | None = None) -> None:
    """Set up this process for training beside the GUI. The OpenMP setting only counts when made
    before torch starts OpenMP, and never overrides the user's environment."""
    cores = cores or os.cpu_count() or 1
    environ = os.environ if environ is None else environ
    if cores <= SMALL_CPU:
        for name, value in WAIT_POLICY.items():
            environ.setdefault(name, value)
    import engine  # torch, after the environment is set

    engine.set_training_niceness(TRAINING_NICENESS)
