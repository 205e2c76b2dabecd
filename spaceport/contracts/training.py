"""The training settings a user may choose, and SageMaker's limits on how they travel.

A job's ``options.hyperparameters`` reach the training job as SageMaker hyperparameters, and
the training job reads them into its configuration (``spaceport_train.config.TrainConfig``,
whose fields these are). The gateway checks them against :data:`TRAINING_SETTINGS` when the
job is posted, so a bad value is a 400 at once, never a failure hours later after SfM was paid
for; a test keeps this table and the training job's configuration in step.

>>> check_hyperparameters({"steps": "500", "sh_degree": 1})
{'steps': '500', 'sh_degree': '1'}
>>> check_hyperparameters({"steps": "lots", "colour": "blue"})
Traceback (most recent call last):
...
spaceport.contracts.training.BadTrainingSettings: steps must be a whole number, not 'lots'; colour is not a training setting (known: background, exposure, max_gaussians, max_image_size, rasterize_mode, sh_degree, steps, strategy, time_budget_s)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

# The named starting points of the training configuration, and the choices of its settings.
Preset = Literal["quick", "default", "quality"]
PRESETS: tuple[str, ...] = get_args(Preset)
STRATEGIES = ("default", "mcmc")
BACKGROUNDS = ("black", "sky")
EXPOSURES = ("none", "affine")
RASTERIZE_MODES = ("classic", "antialiased")
# SageMaker refuses a training job with more hyperparameters, or a longer value, than these.
MAX_HYPERPARAMETERS = 100
MAX_HYPERPARAMETER_CHARS = 2500


class BadTrainingSettings(SpaceportError):
    """Training settings a job may not be given; ``problems`` lists each one."""

    code = "bad_training_settings"
    exit_code = ExitCode.BAD_OPTIONS

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems), problems=problems)
        self.problems = problems


@dataclass(frozen=True)
class Setting:
    """One training setting: its type and the values a user may give it."""

    name: str
    kind: type[int] | type[float] | type[str]
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, raw: Any) -> str | None:
        """The problem with ``raw`` as a value of this setting; ``None`` when it is fine."""
        text = str(raw)
        if self.kind is str:
            if self.choices and text not in self.choices:
                return f"{self.name} must be one of {', '.join(self.choices)}, not {text!r}"
            return None
        try:
            value = int(text) if self.kind is int else float(text)
        except ValueError:
            noun = "a whole number" if self.kind is int else "a number"
            return f"{self.name} must be {noun}, not {text!r}"
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            return f"{self.name} must be from {self.minimum:g} to {self.maximum:g}, not {text}"
        return None


TRAINING_SETTINGS: Mapping[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("steps", int, 1, 200_000),
        Setting("sh_degree", int, 0, 3),
        Setting("max_gaussians", int, 1_000, 20_000_000),
        # 0: the preset's cap for the device.
        Setting("max_image_size", int, 0, 8_192),
        # Seconds of the whole job; 0 means none, and the stage's time limit still holds.
        Setting("time_budget_s", float, 0, 7 * 24 * 3600),
        Setting("strategy", str, choices=STRATEGIES),
        Setting("background", str, choices=BACKGROUNDS),
        Setting("exposure", str, choices=EXPOSURES),
        Setting("rasterize_mode", str, choices=RASTERIZE_MODES),
    )
}


def check_hyperparameters(values: Mapping[str, Any]) -> dict[str, str]:
    """``values`` as the strings SageMaker carries, after checking each against its setting."""
    problems = []
    if len(values) > MAX_HYPERPARAMETERS:
        problems.append(f"at most {MAX_HYPERPARAMETERS} training settings may be given")
    for name, raw in values.items():
        setting = TRAINING_SETTINGS.get(name)
        if setting is None:
            problems.append(f"{name} is not a training setting (known: {', '.join(sorted(TRAINING_SETTINGS))})")
            continue
        if len(str(raw)) > MAX_HYPERPARAMETER_CHARS:
            problems.append(f"{name} is longer than {MAX_HYPERPARAMETER_CHARS} characters")
            continue
        problem = setting.check(raw)
        if problem:
            problems.append(problem)
    if problems:
        raise BadTrainingSettings(problems)
    return {name: str(raw) for name, raw in values.items()}
