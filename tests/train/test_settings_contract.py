"""The settings the gateway accepts at POST time are settings the training job accepts, with the same values.

The gateway checks ``options.hyperparameters`` against ``spaceport.contracts.training``; the
job reads them into ``TrainConfig``. If the two disagreed, a job would pass the gateway and
fail hours later in the GPU job, or a good value would be refused at once.
"""

from __future__ import annotations

import dataclasses

import pytest

from spaceport.contracts.training import TRAINING_SETTINGS, BadTrainingSettings, check_hyperparameters
from spaceport_train.config import TrainConfig
from spaceport_train.errors import TrainConfigError

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
KINDS = {int: "int", float: "float", str: "str"}


def _job_accepts(name: str, value: str) -> bool:
    try:
        TrainConfig.from_hyperparameters({"preset": "quick", "device": "cpu", name: value})
    except TrainConfigError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(TRAINING_SETTINGS))
def test_each_accepted_setting_is_a_training_field_of_the_same_type(name):
    assert name in FIELDS, f"the gateway accepts {name}, which the training job does not know"
    assert str(FIELDS[name].type) == KINDS[TRAINING_SETTINGS[name].kind]


@pytest.mark.parametrize("name", sorted(n for n, s in TRAINING_SETTINGS.items() if s.choices))
def test_the_choices_are_the_training_jobs_choices(name):
    for choice in TRAINING_SETTINGS[name].choices:
        assert check_hyperparameters({name: choice}) == {name: choice}
        assert _job_accepts(name, choice), f"{name}={choice} passes the gateway but fails the job"
    assert not _job_accepts(name, "no-such-choice")
    with pytest.raises(BadTrainingSettings):
        check_hyperparameters({name: "no-such-choice"})


@pytest.mark.parametrize("name", sorted(n for n, s in TRAINING_SETTINGS.items() if s.kind is not str))
def test_the_bounds_are_values_the_training_job_accepts(name):
    setting = TRAINING_SETTINGS[name]
    for bound in (setting.minimum, setting.maximum):
        value = str(int(bound)) if setting.kind is int else str(bound)
        check_hyperparameters({name: value})
        assert _job_accepts(name, value), f"{name}={value} passes the gateway but fails the job"
