"""System field catalogues of deals, leads, contacts, companies and smart processes.

Each line: ``LEGACY camelKey type [flags] [statusType] | Title`` (``-`` = no legacy name; flags R
read-only, Q required, M multiple, I immutable, X not in ``select *``, D deprecated).
"""
from __future__ import annotations

from .fields import EntityKind, Field, FieldSet

_COMMON_TAIL = """
ORIGINATOR_ID originatorId string | External source
ORIGIN_ID originId string | Item ID in data source
UTM_SOURCE utmSource string | Ad system
UTM_MEDIUM utmMedium string | Traffic type
UTM_CAMPAIGN utmCampaign string | Ad campaign UTM
UTM_CONTENT utmContent string | Campaign contents
UTM_TERM utmTerm string | Campaign search term
LAST_ACTIVITY_TIME lastActivityTime datetime R | Last activity
LAST_ACTIVITY_BY lastActivityBy user R | Last activity by
"""
_ADDRESS = """
ADDRESS address string | Street address
ADDRESS_2 address2 string | Address (line 2)
ADDRESS_CITY addressCity string | City
ADDRESS_POSTAL_CODE addressPostalCode string | Zip
ADDRESS_REGION addressRegion string | Region
ADDRESS_PROVINCE addressProvince string | State / Province
ADDRESS_COUNTRY addressCountry string | Country
ADDRESS_COUNTRY_CODE addressCountryCode string | Country code
ADDRESS_LOC_ADDR_ID addressLocAddrId integer | Location address ID
"""
_MULTI = """
PHONE phone crm_multifield MX | Phone
EMAIL email crm_multifield MX | E-mail
WEB web crm_multifield MX | Website
IM im crm_multifield MX | Messenger
LINK link crm_multifield MX | LINK
"""
_CREATED = """
ASSIGNED_BY_ID assignedById user | Responsible person
CREATED_BY_ID createdBy user R | Created by
MODIFY_BY_ID updatedBy user R | Modified by
DATE_CREATE createdTime datetime R | Created on
DATE_MODIFY updatedTime datetime R | Modified on
OPENED opened char | Available to everyone
"""

DEAL = """
ID id integer R | ID
TITLE title string | Title
TYPE_ID typeId crm_status - DEAL_TYPE | Type
CATEGORY_ID categoryId crm_category I | Sales Funnel
STAGE_ID stageId crm_status - DEAL_STAGE | Deal Stage
STAGE_SEMANTIC_ID stageSemanticId string R | Stage Group
IS_NEW isNew char R | New Deal
IS_RECURRING isRecurring char | Recurring Deal
IS_RETURN_CUSTOMER isReturnCustomer char | Repeat Deal
IS_REPEATED_APPROACH isRepeatedApproach char | Repeated Approach
PROBABILITY probability integer | Probability
CURRENCY_ID currencyId crm_currency | Currency
OPPORTUNITY opportunity double | Amount
IS_MANUAL_OPPORTUNITY isManualOpportunity char | IS_MANUAL_OPPORTUNITY
TAX_VALUE taxValue double | Tax Rate
LEAD_ID leadId crm_lead R | Lead
COMPANY_ID companyId crm_company | Company
CONTACT_ID contactId crm_contact D | Contact
CONTACT_IDS contactIds crm_contact MX | Contacts
QUOTE_ID quoteId crm_quote R | Estimate
BEGINDATE begindate date | Start Date
CLOSEDATE closedate date | Expected close date
CLOSED closed char | Closed
COMMENTS comments string | Comment
ADDITIONAL_INFO additionalInfo string | Additional information
LOCATION_ID locationId location | Location
SOURCE_ID sourceId crm_status - SOURCE | Source
SOURCE_DESCRIPTION sourceDescription string | Source information
MOVED_BY_ID movedBy user R | Stage changed by
MOVED_TIME movedTime datetime R | Stage change date
""" + _CREATED + _COMMON_TAIL

LEAD = """
ID id integer R | ID
TITLE title string | Lead Name
HONORIFIC honorific crm_status - HONORIFIC | Salutation
NAME name string | First name
SECOND_NAME secondName string | Second name
LAST_NAME lastName string | Last name
BIRTHDATE birthdate date | Date of birth
COMPANY_TITLE companyTitle string | Company name
COMPANY_ID companyId crm_company | Company
CONTACT_ID contactId crm_contact D | Contact
CONTACT_IDS contactIds crm_contact MX | Contacts
IS_RETURN_CUSTOMER isReturnCustomer char R | Repeat lead
SOURCE_ID sourceId crm_status - SOURCE | Source
SOURCE_DESCRIPTION sourceDescription string | Source information
STATUS_ID stageId crm_status - STATUS | Stage
STATUS_DESCRIPTION statusDescription string | Additional info
STATUS_SEMANTIC_ID stageSemanticId string R | Status details
POST post string | Position
CURRENCY_ID currencyId crm_currency | Currency
OPPORTUNITY opportunity double | Amount
IS_MANUAL_OPPORTUNITY isManualOpportunity char | IS_MANUAL_OPPORTUNITY
HAS_PHONE hasPhone char R | Has phone
HAS_EMAIL hasEmail char R | Has email
HAS_IMOL hasImol char R | Has Open Channel
COMMENTS comments string | Comment
DATE_CLOSED dateClosed datetime R | Closed
MOVED_BY_ID movedBy user R | Stage changed by
MOVED_TIME movedTime datetime R | Stage change date
""" + _ADDRESS + _CREATED + _COMMON_TAIL + _MULTI

CONTACT = """
ID id integer R | ID
HONORIFIC honorific crm_status - HONORIFIC | Salutation
NAME name string | First name
SECOND_NAME secondName string | Second name
LAST_NAME lastName string | Last name
PHOTO photo file | Photo
BIRTHDATE birthdate date | Date of birth
TYPE_ID typeId crm_status - CONTACT_TYPE | Contact type
SOURCE_ID sourceId crm_status - SOURCE | Source
SOURCE_DESCRIPTION sourceDescription string | Source information
POST post string | Position
COMMENTS comments string | Comment
EXPORT export char | Included in export
HAS_PHONE hasPhone char R | Has phone
HAS_EMAIL hasEmail char R | Has email
HAS_IMOL hasImol char R | Has Open Channel
COMPANY_ID companyId crm_company D | Company
COMPANY_IDS companyIds crm_company MX | Companies
LEAD_ID leadId crm_lead R | Lead
ORIGIN_VERSION originVersion string | Original version
FACE_ID faceId integer | Face ID
""" + _ADDRESS + _CREATED + _COMMON_TAIL + _MULTI

COMPANY = """
ID id integer R | ID
TITLE title string Q | Company Name
COMPANY_TYPE typeId crm_status - COMPANY_TYPE | Company type
LOGO logo file | Logo
LEAD_ID leadId crm_lead R | Lead
HAS_PHONE hasPhone char R | Has phone
HAS_EMAIL hasEmail char R | Has email
HAS_IMOL hasImol char R | Has Open Channel
BANKING_DETAILS bankingDetails string | Payment details
INDUSTRY industry crm_status - INDUSTRY | Industry
REVENUE revenue double | Annual revenue
CURRENCY_ID currencyId crm_currency | Currency
EMPLOYEES employees crm_status - EMPLOYEES | Employees
COMMENTS comments string | Comment
IS_MY_COMPANY isMyCompany char | My company
ORIGIN_VERSION originVersion string | Original version
ADDRESS_LEGAL addressLegal string | Legal address
REG_ADDRESS regAddress string | Legal address
REG_ADDRESS_2 regAddress2 string | Legal address (line 2)
REG_ADDRESS_CITY regAddressCity string | City (legal)
REG_ADDRESS_POSTAL_CODE regAddressPostalCode string | Zip (legal)
REG_ADDRESS_REGION regAddressRegion string | Region (legal)
REG_ADDRESS_PROVINCE regAddressProvince string | State / Province (legal)
REG_ADDRESS_COUNTRY regAddressCountry string | Country (legal)
REG_ADDRESS_COUNTRY_CODE regAddressCountryCode string | Country code (legal)
REG_ADDRESS_LOC_ADDR_ID regAddressLocAddrId integer | Location address ID (legal)
CONTACT_ID contactId crm_contact X | Contact
LAST_COMMUNICATION_TIME lastCommunicationTime string R | Last communication
""" + _ADDRESS + _CREATED + _COMMON_TAIL + _MULTI

SMART = """
- id integer R | ID
- xmlId string | External code
- title string | Name
- createdTime datetime R | Created at
- updatedTime datetime R | Updated at
- createdBy user R | Created by
- updatedBy user R | Updated by
- assignedById user | Assigned to
- opened boolean Q | Publicly available
- webformId integer | Created by CRM form
- begindate date | Start date
- closedate date | End date
- companyId crm_company | Company
- contactId crm_contact D | Contact
- contactIds crm_contact M | CONTACT_IDS
- contacts crm_contact M | CONTACTS
- observers user M | Observers
- categoryId crm_category | Pipeline
- movedTime datetime R | Moved on
- movedBy user R | Moved by
- stageId crm_status | Stage
- previousStageId crm_status R | Previous stage
- sourceId crm_status - SOURCE | Source
- sourceDescription string | Source information
- currencyId crm_currency | Currency
- isManualOpportunity boolean | Manual amount calculation
- opportunity double | Amount
- taxValue double | Tax amount
- mycompanyId crm_company | Your company details
- lastActivityBy user R | Last activity by
- lastActivityTime datetime R | Last activity
"""

_ITEM_EXTRA = {
    "deal": {"dateCreateShort": None, "dateModifyShort": None, "productId": None, "begindateShort": None,
             "closedateShort": None, "eventDate": None, "eventDateShort": None, "eventId": None,
             "eventDescription": None, "webformId": None, "searchContent": None, "orderStage": None,
             "isWork": None, "isWon": None, "isLose": None, "receivedAmount": None, "lostAmount": None,
             "hasProducts": None, "observers": []},
    "lead": {"dateCreateShort": None, "dateModifyShort": None, "isConvert": None, "productId": None,
             "shortName": None, "webformId": 0, "login": None, "searchContent": None, "skype": None,
             "icq": None, "observers": []},
    "contact": {"observers": []},
    "company": {"observers": []},
    "item": {},
}


def parse_catalog(text: str) -> list[Field]:
    """Turn a catalogue block into `Field`s."""
    out = []
    for line in filter(str.strip, text.strip().splitlines()):
        spec, title = (s.strip() for s in line.split("|", 1))
        parts = spec.split()
        legacy, key, ftype = parts[0], parts[1], parts[2]
        flags = parts[3] if len(parts) > 3 and parts[3] != "-" else ""
        status = parts[4] if len(parts) > 4 else None
        settings = None
        if ftype in ("crm_company", "crm_contact", "crm_lead", "crm_quote"):
            settings = {"parentEntityTypeId": {"crm_lead": 1, "crm_contact": 3, "crm_company": 4,
                                               "crm_quote": 7}[ftype]}
        out.append(Field(key=key, legacy=None if legacy == "-" else legacy, type=ftype, title=title,
                         flags=flags, status_type=status, settings=settings))
    return out


def build_kind(name: str, entity_type_id: int, uf_entity_id: str, title: str = "") -> EntityKind:
    """A fresh `EntityKind` for one portal (each portal has its own custom fields)."""
    text = {"deal": DEAL, "lead": LEAD, "contact": CONTACT, "company": COMPANY}.get(name, SMART)
    fields = FieldSet(parse_catalog(text))
    if name == "item":
        stage = fields.fields["stageId"]
        stage.status_type = f"DYNAMIC_{entity_type_id}_STAGE_0"
        fields.fields["previousStageId"].status_type = stage.status_type
        fields.fields["mycompanyId"].settings = {"isMyCompany": True, "parentEntityTypeId": 4,
                                                 "isEmbeddedEditorEnabled": True}
    return EntityKind(entity_type_id, name, uf_entity_id, fields, dict(_ITEM_EXTRA[name]), title)
