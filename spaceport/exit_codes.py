"""Every process exit code Spaceport uses, in one registry: a code alone says where a job stopped.

Each :class:`~spaceport.errors.SpaceportError` subclass takes its ``exit_code`` from here, and
``@unique`` refuses two names for one number when this module is imported. Codes are grouped
by owner:

=========  =========================================================
range      owner
=========  =========================================================
1          a bug (an uncaught exception)
2          command-line usage (argparse)
10-29      SfM stage (``spaceport_sfm.errors``)
30-49      training stage (``spaceport_train.errors``)
50-69      compression stage (``spaceport_compress.errors``)
70-79      control plane: events, configuration, AWS adapters, the API
80-89      local runtime and its commands (``spaceport.local``)
90-94      deployment tooling (``spaceport_infra``)
95-99      file formats shared by the stages (``spaceport.splats``)
=========  =========================================================

>>> ExitCode.NOT_A_ZIP.value, owner(ExitCode.NOT_A_ZIP)
(12, 'sfm')
"""

from __future__ import annotations

from enum import IntEnum, unique

RANGES: dict[str, range] = {
    "bug": range(1, 2),
    "usage": range(2, 3),
    "sfm": range(10, 30),
    "train": range(30, 50),
    "compress": range(50, 70),
    "control": range(70, 80),
    "local": range(80, 90),
    "infra": range(90, 95),
    "formats": range(95, 100),
}


@unique
class ExitCode(IntEnum):
    BUG = 1
    USAGE = 2
    # SfM
    SFM_FAILED = 10
    PHOTOS_NOT_FOUND = 11
    NOT_A_ZIP = 12
    CORRUPT_ZIP = 13
    UNSAFE_ZIP = 14
    ZIP_TOO_LARGE = 15
    NO_IMAGES = 16
    SFM_TOO_FEW_IMAGES = 17
    RECONSTRUCTION_FAILED = 18
    TOO_FEW_REGISTERED = 19
    BAD_FLIGHT_LOG = 20
    # training
    TRAIN_FAILED = 30
    BAD_TRAIN_CONFIG = 31
    NO_SPARSE_MODEL = 32
    TRAIN_TOO_FEW_IMAGES = 33
    NO_POINTS = 34
    MISSING_IMAGE = 35
    BACKEND_UNAVAILABLE = 36
    NAN_LOSS = 37
    OUT_OF_MEMORY = 38
    BAD_CHECKPOINT = 39
    TRAINING_INTERRUPTED = 40
    BAD_BLOCK_PLAN = 41
    MERGE_FAILED = 42
    # compression
    EMPTY_SPLAT = 51
    NO_FINITE_SPLATS = 52
    BAD_SOG_FILE = 53
    BAD_COMPRESS_INPUT = 54
    EXPORT_FAILED = 55
    # control plane
    INVALID_EVENT = 70
    BAD_CONFIG = 71
    BAD_S3_URI = 72
    PUBLISH_FAILED = 73
    LAUNCH_FAILED = 74
    API_REFUSED = 75
    BAD_OPTIONS = 76
    BAD_TOKEN = 77
    INTEGRATION_KEY_REFUSED = 78
    NOT_SIGNED_IN = 79
    # local runtime
    LOCAL_STACK = 80
    NO_LOCAL_STACK = 81
    JOB_NOT_COMPLETED = 82
    UNKNOWN_JOB = 83
    GATEWAY_REFUSED = 84
    LOCAL_JOB_NOT_FOUND = 85
    LOCAL_ONLY = 86
    # deployment tooling
    BAD_INFRA_SETTING = 90
    DEPLOY_STEP_FAILED = 91
    # shared file formats
    BAD_SPLAT_FILE = 95


def owner(code: int) -> str:
    """The range that ``code`` belongs to (``"sfm"``, ``"control"``, ...)."""
    for name, codes in RANGES.items():
        if code in codes:
            return name
    raise ValueError(f"exit code {code} is in no range of spaceport.exit_codes")
