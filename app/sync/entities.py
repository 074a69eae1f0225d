"""What is mirrored: one spec per CRM entity type, all read through the universal `crm.item.*` methods.

`crm.item.*` (not the deprecated `crm.deal.*` family) gives one shape for deals, leads, contacts,
companies and every smart process, returns contact links (`contactIds`) and multi-fields (`fm`) in the
same answer, and with `useOriginalUfNames=Y` keeps custom fields under their `UF_CRM_*` names.
"""
from __future__ import annotations

from dataclasses import dataclass

LEAD, DEAL, CONTACT, COMPANY = 1, 2, 3, 4


@dataclass(frozen=True)
class EntitySpec:
    """One mirrored entity type."""

    name: str  # deal, lead, contact, company, sp_<entityTypeId>
    entity_type_id: int
    table: str
    title: str
    stage_status_type: str | None = None  # status list of stageId when the metadata does not name it
    has_categories: bool = False

    @property
    def list_params(self) -> dict:
        """Parameters every crm.item.list call for this entity carries."""
        return {"entityTypeId": self.entity_type_id, "useOriginalUfNames": "Y", "select": ["*", "UF_*"]}

    # Field names in crm.item.* (camelCase).
    id_field: str = "id"
    modified_field: str = "updatedTime"


CLASSIC: tuple[EntitySpec, ...] = (
    EntitySpec("deal", DEAL, "deals", "Deals", "DEAL_STAGE", has_categories=True),
    EntitySpec("lead", LEAD, "leads", "Leads", "STATUS"),
    EntitySpec("contact", CONTACT, "contacts", "Contacts"),
    EntitySpec("company", COMPANY, "companies", "Companies"),
)


def smart_process(entity_type_id: int, title: str) -> EntitySpec:
    """The spec of a smart process found by crm.type.list."""
    return EntitySpec(f"sp_{entity_type_id}", entity_type_id, f"sp_{entity_type_id}", title,
                      f"DYNAMIC_{entity_type_id}_STAGE", has_categories=True)


def entity_for_event(entity_type: str) -> str | None:
    """Map an event's entity type (deal, lead, contact, company, dynamic:<id>) to a spec name."""
    if entity_type in ("deal", "lead", "contact", "company"):
        return entity_type
    if entity_type.startswith("dynamic:") and entity_type.split(":", 1)[1].isdigit():
        return f"sp_{entity_type.split(':', 1)[1]}"
    return None
