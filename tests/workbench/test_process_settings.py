"""workbench.training.threads: the process settings the window trains with."""

import engine
from workbench.training import threads
from workbench.training.threads import TRAINING_NICENESS, configure_process


def test_small_machines_wait_passively_and_the_users_environment_wins(monkeypatch):
    niceness = []
    monkeypatch.setattr(engine, "set_training_niceness", niceness.append)
    env: dict[str, str] = {}
    configure_process(cores=2, environ=env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    configure_process(cores=1, environ=env)
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}
    env = {}
    configure_process(cores=8, environ=env)  # cores to spare: OpenMP's own default
    assert env == {}
    assert niceness == [TRAINING_NICENESS] * 3  # training below the GUI thread, everywhere
    assert threads.SMALL_CPU == 2
