"""The topology tells the whole story: every event's emitters and consumers, and routing derived from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from spaceport.contracts.events import EVENT_TYPES, StageCompleted
from spaceport.contracts.stages import JOB_STAGES, STAGE_ORDER, Stage
from spaceport.contracts.topology import (
    GATEWAY,
    ROUTES,
    SAGEMAKER,
    SERVICES,
    SWEEPER,
    Action,
    action_for,
    completion_event,
    consumers_of,
    service,
)

REPO = Path(__file__).resolve().parents[2]
# The modules whose code each unit runs, and so the events it may publish.
EMITTING_MODULES = {
    GATEWAY: ("spaceport/api/endpoints.py",),
    "stage services": ("spaceport/handlers/stage.py", "spaceport/handlers/blocks.py"),
    "notify": ("spaceport/handlers/notify.py",),
    SWEEPER: ("spaceport/handlers/sweeper.py",),
}


def test_every_event_has_a_route_naming_its_emitters_and_consumers_or_why_none():
    routed = {route.event for route in ROUTES}
    assert set(EVENT_TYPES) <= routed, "every pipeline event is in the table"
    units = {spec.name for spec in SERVICES} | {GATEWAY, SWEEPER, SAGEMAKER}
    for route in ROUTES:
        assert route.emitted_by and set(route.emitted_by) <= units, route
        assert bool(route.consumers) != bool(route.terminal), f"{route.event}: consumed, or terminal with a reason"
        assert {consumer.service for consumer in route.consumers} <= {spec.name for spec in SERVICES}


def test_each_stage_is_started_by_the_completion_of_the_stage_before_it():
    for before, after in zip(JOB_STAGES, JOB_STAGES[1:], strict=False):
        event = completion_event(before)
        assert issubclass(event, StageCompleted) and consumers_of(event.detail_type) == (after.value,)
        assert action_for(after.value, event.detail_type) is Action.START
    last = completion_event(JOB_STAGES[-1]).detail_type
    assert consumers_of(last) == (STAGE_ORDER[-1].value,)


def test_a_stage_service_starts_and_stops_only_its_own_stage():
    for stage in JOB_STAGES:
        for other in JOB_STAGES:
            expected_start = Action.START if other is stage else None
            assert action_for(stage.value, "JobRequested", other) is expected_start
            assert action_for(stage.value, "JobCancelled", other) is (Action.STOP if other is stage else None)
    assert action_for("notify", "JobRequested", Stage.SFM) is None


@pytest.mark.parametrize("spec", SERVICES, ids=lambda spec: spec.name)
def test_rules_are_derived_from_the_routes(spec):
    detail_types = sorted(sub.pattern["detail-type"][0] for sub in spec.subscriptions("local"))
    expected = sorted(route.event for route in ROUTES if route.actions_of(spec.name))
    assert detail_types == expected
    assert spec.visibility_timeout_s >= 6 * spec.consumer_timeout_s


def _published_event_classes(path: Path) -> set[str]:
    """The event classes a module constructs (what it may publish)."""
    tree = ast.parse(path.read_text())
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    return called & {cls.__name__ for cls in EVENT_TYPES.values()}


def test_each_unit_publishes_only_what_the_table_says_it_emits():
    names = {cls.__name__: cls.detail_type for cls in EVENT_TYPES.values()}
    emitted = {
        GATEWAY: {route.event for route in ROUTES if GATEWAY in route.emitted_by},
        "stage services": {
            route.event for route in ROUTES if set(route.emitted_by) & {stage.value for stage in JOB_STAGES}
        },
        "notify": {route.event for route in ROUTES if "notify" in route.emitted_by},
        SWEEPER: {route.event for route in ROUTES if SWEEPER in route.emitted_by},
    }
    for unit, modules in EMITTING_MODULES.items():
        published = {names[name] for module in modules for name in _published_event_classes(REPO / module)}
        # The stage handler names the completion event through the topology (completion_event), not a class.
        assert published <= emitted[unit], (unit, published - emitted[unit])
    assert service("notify").sagemaker_job is None
