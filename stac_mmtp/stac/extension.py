"""Typed access to the `mmtp:` fields, in the style of pystac's own extension classes."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

import pystac
from pystac.extensions.base import ExtensionManagementMixin, PropertiesExtension

from stac_mmtp import EXTENSION_PREFIX, EXTENSION_SCHEMA_URI

T = TypeVar("T", pystac.Item, pystac.Asset)


def _field(name: str, doc: str) -> property:
    key = EXTENSION_PREFIX + name

    def getter(self: MmtpExtension[Any]) -> Any:
        return self._get_property(key, object)

    def setter(self: MmtpExtension[Any], value: Any) -> None:
        self._set_property(key, value, pop_if_none=True)

    return property(getter, setter, doc=doc)


class MmtpExtension(
    Generic[T],
    PropertiesExtension,
    ExtensionManagementMixin[pystac.Item | pystac.Collection],
):
    """The stac-mmtp phenomenon/annotation extension on an Item or an Asset.

    >>> ext = MmtpExtension.ext(item, add_if_missing=True)
    >>> ext.event_id = "gjerdrum-landslide-2020"; ext.temporal_role = "pre-event"
    """

    name = "mmtp"

    event_id = _field("event_id", "Id of the inventory event (the item id in the events collection).")
    phenomenon = _field("phenomenon", "Phenomenon class from the mmtp vocabulary.")
    state = _field("state", "Activity state of the phenomenon.")
    event_datetime = _field("event_datetime", "Date-time of an instantaneous event (RFC 3339, UTC).")
    event_start_datetime = _field("event_start_datetime", "Start of an event active over a period.")
    event_end_datetime = _field("event_end_datetime", "End of an event active over a period.")
    hazard_codes = _field("hazard_codes", "Hazard codes (UNDRR-ISC 2025, GLIDE) as in Monty's hazard_codes.")
    glide = _field("glide", "GLIDE number of the event.")
    countries = _field("countries", "ISO 3166-1 alpha-3 country codes.")
    triggered_by = _field("triggered_by", "Ids of the events that triggered this one.")
    triggers = _field("triggers", "Ids of the events this one triggered.")
    temporal_role = _field("temporal_role", "pre-event, first-post-event, first-usable-post-event, post-event or co-event.")
    days_from_event = _field("days_from_event", "Acquisition time minus event time, in days.")
    synthetic = _field("synthetic", "True when made from a synthetic sample product (stac-mmtp sample), not an observation.")
    annotation_method = _field("annotation_method", "manual, semi-automatic or automatic.")
    annotator = _field("annotator", "Who drew the annotation.")
    annotator_expertise = _field("annotator_expertise", "expert, trained, novice or algorithm.")
    confidence = _field("confidence", "Confidence in the annotation, 0..1.")
    review_status = _field("review_status", "draft, reviewed, validated or rejected.")
    artefacts = _field("artefacts", "Artefacts present in the imagery or annotation.")

    def __init__(self, obj: T):
        self.obj = obj
        self.properties = obj.properties if isinstance(obj, pystac.Item) else obj.extra_fields

    def apply(self, **fields: Any) -> None:
        """Set several fields at once (None values are removed)."""
        for name, value in fields.items():
            if not hasattr(type(self), name):
                raise AttributeError(f"no mmtp field {name!r}")
            setattr(self, name, value)

    @classmethod
    def get_schema_uri(cls) -> str:
        return EXTENSION_SCHEMA_URI

    @classmethod
    def ext(cls, obj: T, add_if_missing: bool = False) -> MmtpExtension[T]:
        if isinstance(obj, pystac.Item):
            cls.ensure_has_extension(obj, add_if_missing)
        elif isinstance(obj, pystac.Asset):
            cls.ensure_owner_has_extension(obj, add_if_missing)
        else:
            raise pystac.ExtensionTypeError(cls._ext_error_message(obj))
        return cast(MmtpExtension[T], cls(obj))
