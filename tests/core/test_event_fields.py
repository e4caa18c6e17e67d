"""The one event-body field helper (doc_field) and event_type making the dataclass: what the
schema and the validator see."""
from __future__ import annotations

import dataclasses

import pytest

from storeedge.events import REGISTRY, Prio, doc_field, event_type, schema_for, validate_body
from storeedge.exc import EventError


@pytest.fixture
def scratch_types():
    """Event types registered by a test are removed again (the schema file lists the rest)."""
    before = set(REGISTRY)
    yield
    for name in set(REGISTRY) - before:
        del REGISTRY[name]


def test_doc_field_gives_description_unit_and_default(scratch_types):
    @event_type("scratch.reading", prio=Prio.TELEMETRY)
    class Reading:
        """A scratch reading."""

        probe: str
        temp_c: float = doc_field("the reading", "degC")
        note: str | None = doc_field("free text", default=None)
        tags: list[str] = doc_field("labels", default_factory=list)

    assert dataclasses.is_dataclass(Reading)
    schema = schema_for("scratch.reading")
    assert schema["properties"]["temp_c"] == {"type": "number", "description": "the reading",
                                              "x-unit": "degC"}
    assert "x-unit" not in schema["properties"]["note"]
    assert schema["required"] == ["probe", "temp_c"]
    assert schema["x-prio"] == 3
    assert Reading("top", 1.5).tags == [] and Reading("top", 1.5).note is None


def test_a_registered_subclass_of_a_body_gets_its_own_fields(scratch_types):
    @dataclasses.dataclass
    class Base:
        open_s: float = doc_field("how long", "s")

    @event_type("scratch.alarm", prio=Prio.SAFETY)
    class Alarm(Base):
        """A scratch alarm with one more field."""

        zone: str = doc_field("where", default="")

    assert [f.name for f in dataclasses.fields(Alarm)] == ["open_s", "zone"]
    assert Alarm(2.0, "dock").zone == "dock"
    validate_body("scratch.alarm", {"open_s": 2.0, "zone": "dock"})
    with pytest.raises(EventError, match="zone"):
        validate_body("scratch.alarm", {"open_s": 2.0, "zone": 3})


def test_door_bodies_use_the_one_registry_and_prio():
    from storeedge.firmware.dock_door import events as door

    assert not hasattr(door, "EVENT_TYPES")
    assert REGISTRY["door.forced_open"].prio is Prio.SAFETY
    assert REGISTRY["door.granted"].body is door.DoorGranted
    with pytest.raises(KeyError):
        door.event_from_body("device.started", {})
