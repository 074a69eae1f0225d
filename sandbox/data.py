"""Deterministic, seeded demo data of any size for a portal's CRM.

`seed_portal(portal, size, seed)` fills users with a department tree (heads, admins, inactive users,
users without e-mail and one duplicate e-mail), stages, pipelines, two smart processes (apartments,
rental contracts), custom fields of every documented USER_TYPE_ID, and ``size`` deals with
companies, contacts, leads and smart-process items scaled from it. Records are written straight into
the stores (no events), so 100,000 deals take seconds.
"""
from __future__ import annotations

import random
import time

from .core import PortalState
from .crm.fields import fmt_time
from .crm.state import CrmState

APARTMENTS, CONTRACTS = 128, 130  # smart-process entityTypeIds (crm.type ids 1 and 2)
RU_FIRST = ["Иван", "Анна", "Сергей", "Мария", "Алексей", "Ольга", "Дмитрий", "Елена", "Никита", "Татьяна"]
RU_LAST = ["Иванов", "Петрова", "Смирнов", "Кузнецова", "Попов", "Волкова", "Соколов", "Лебедева"]
EN_FIRST = ["John", "Emma", "Oliver", "Sophia", "James", "Amelia", "Klaus", "Laura", "Peter", "Grace"]
EN_LAST = ["Smith", "Johnson", "Weber", "Brown", "Taylor", "Miller", "Wilson", "Clark"]
COMPANY_RU = ["ООО «Ромашка»", "АО «Вектор»", "ООО «Горизонт»", "ЗАО «СтройИнвест»", "ООО «Альфа Дом»"]
COMPANY_EN = ["Acme Ltd", "Globex Corp", "Initech", "Umbrella Estates", "Northwind Homes"]
CITIES = ["Москва", "Санкт-Петербург", "Berlin", "London", "Казань", "Riga"]
_T0 = 1640995200  # 2022-01-01


def _status(crm: CrmState, entity: str, rows: list[tuple], category: int | None = None) -> None:
    colors = ["#39A8EF", "#2FC6F6", "#55D0E0", "#47E4C2", "#FFA900", "#7BD500", "#FF5752"]
    for i, row in enumerate(rows):
        sid, name, sem = row if len(row) == 3 else (*row, None)
        rec = {"ID": str(len(crm.statuses) + 1), "ENTITY_ID": entity, "STATUS_ID": sid, "NAME": name,
               "NAME_INIT": name if sem or i == 0 else "", "SORT": str(10 * (i + 1)),
               "SYSTEM": "Y" if sem or i == 0 else "N",
               "CATEGORY_ID": None if category is None else str(category),
               "COLOR": colors[i % len(colors)], "SEMANTICS": sem}
        if "STAGE" in entity or entity == "STATUS":
            rec["EXTRA"] = {"SEMANTICS": {"S": "success", "F": "failure"}.get(sem or "", "process"),
                            "COLOR": rec["COLOR"]}
        crm.statuses.append(rec)


def _dictionaries(crm: CrmState) -> None:
    _status(crm, "STATUS", [("NEW", "Unassigned"), ("IN_PROCESS", "In progress"), ("PROCESSED", "Processed"),
                            ("CONVERTED", "Good lead", "S"), ("JUNK", "Junk lead", "F")])
    for ent, vals in {
        "SOURCE": ["CALL", "EMAIL", "WEB", "ADVERTISING", "PARTNER", "RECOMMENDATION", "TRADE_SHOW", "OTHER"],
        "DEAL_TYPE": ["SALE", "COMPLEX", "GOODS", "SERVICES", "SERVICE"],
        "CONTACT_TYPE": ["CLIENT", "SUPPLIER", "PARTNER", "OTHER"],
        "COMPANY_TYPE": ["CUSTOMER", "SUPPLIER", "COMPETITOR", "PARTNER", "OTHER"],
        "INDUSTRY": ["IT", "TELECOM", "MANUFACTURING", "BANKING", "CONSULTING", "FINANCE", "OTHER"],
        "EMPLOYEES": ["EMPLOYEES_1", "EMPLOYEES_2", "EMPLOYEES_3", "EMPLOYEES_4"],
        "HONORIFIC": ["HNR_EN_1", "HNR_EN_2", "HNR_RU_1", "HNR_RU_2"],
    }.items():
        _status(crm, ent, [(v, v.replace("_", " ").title()) for v in vals])
    pipelines = {0: ("General", ["NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE"]),
                 1: ("Аренда", ["NEW", "VIEWING", "CONTRACT"]), 2: ("Partners", ["NEW", "NEGOTIATION"])}
    crm.categories[2] = []
    for cid, (name, stages) in pipelines.items():
        pre = f"C{cid}:" if cid else ""
        ent = "DEAL_STAGE" if not cid else f"DEAL_STAGE_{cid}"
        _status(crm, ent, [(pre + s, s.replace("_", " ").capitalize()) for s in stages]
                + [(pre + "WON", "Deal won", "S"), (pre + "LOSE", "Deal lost", "F")], cid)
        crm.categories[2].append({"id": cid, "name": name, "sort": 100 * (cid + 1), "entityTypeId": 2,
                                  "isDefault": "Y" if cid == 0 else "N", "originId": "", "originatorId": ""})
    for etid, type_id, title, cat in ((APARTMENTS, 1, "Квартиры", 3), (CONTRACTS, 2, "Rental contracts", 4)):
        crm.add_type(etid, title, type_id)
        crm.categories[etid] = [{"id": cat, "name": title, "sort": 500, "entityTypeId": etid, "isDefault": "Y",
                                 "originId": "", "originatorId": ""}]
        pre = f"DT{etid}_{cat}:"
        _status(crm, f"DYNAMIC_{etid}_STAGE_{cat}", [(pre + "NEW", "New"), (pre + "PREPARATION", "In work"),
                                                      (pre + "SUCCESS", "Done", "S"), (pre + "FAIL", "Failed", "F")],
                cat)


def _user_fields(crm: CrmState) -> dict[int, list]:
    ts = 1721244000
    specs = [("string", "Комментарий менеджера", {}), ("integer", "Rooms", {}), ("double", "Area, m²", {}),
             ("boolean", "Mortgage", {"DEFAULT_VALUE": 0, "DISPLAY": "CHECKBOX"}), ("date", "Viewing date", {}),
             ("datetime", "Last call", {}), ("enumeration", "Канал продаж", {"DISPLAY": "LIST"}),
             ("money", "Deposit", {}), ("url", "Listing URL", {}), ("address", "Object address", {}),
             ("employee", "Agent", {}), ("crm", "Linked CRM", {"DEAL": "Y", "CONTACT": "Y", "COMPANY": "Y"}),
             ("file", "Documents", {}), ("crm_status", "Industry", {"ENTITY_TYPE": "INDUSTRY"}),
             ("iblock_section", "Catalog section", {}), ("iblock_element", "Catalog item", {})]
    out: dict[int, list] = {}
    for etid in (2, 1, 3, 4):
        out[etid] = []
        for i, (utype, label, settings) in enumerate(specs if etid == 2 else specs[:7]):
            enum = ["Сайт", "Звонок", "Partner", "Walk-in"] if utype == "enumeration" else None
            f = crm.add_user_field(etid, f"UF_CRM_{ts + etid * 100 + i}", utype, label,
                                   multiple=utype in ("file",), settings=settings, enum=enum)
            out[etid].append(f)
    for etid, type_id in ((APARTMENTS, 1), (CONTRACTS, 2)):
        out[etid] = []
        rows = ([("double", "Площадь"), ("integer", "Комнат"), ("address", "Адрес"), ("enumeration", "Статус")]
                if etid == APARTMENTS else [("crm", "Apartment"), ("money", "Monthly rent"), ("date", "Start"),
                                            ("date", "End")])
        for i, (utype, label) in enumerate(rows):
            enum = ["Свободна", "Сдана", "Ремонт"] if utype == "enumeration" else None
            out[etid].append(crm.add_user_field(etid, f"UF_CRM_{type_id}_{ts + i}", utype, label, enum=enum))
    return out


def _people(crm: CrmState, rnd: random.Random, n_users: int) -> None:
    deps = [(1, "Компания", None), (2, "Sales", 1), (3, "Marketing", 1), (4, "Бухгалтерия", 1), (5, "R&D", 1),
            (6, "Legal", 1), (7, "Продажи Москва", 2), (8, "Sales Europe", 2)]
    for did, name, parent in deps:
        d = {"ID": str(did), "NAME": name, "SORT": 500}
        if parent:
            d["PARENT"] = str(parent)
        crm.departments[did] = d
    for uid in range(1, n_users + 1):
        ru = uid % 2 == 0
        first = rnd.choice(RU_FIRST if ru else EN_FIRST)
        last = rnd.choice(RU_LAST if ru else EN_LAST)
        dep = 1 if uid == 1 else 2 + (uid % 7)
        email = "" if uid % 11 == 0 else f"user{uid}@example.com"
        if uid == 8:
            email = "user7@example.com"  # a duplicate e-mail, as real portals have
        reg = _T0 + uid * 86400
        crm.users[uid] = {
            "ID": str(uid), "ACTIVE": uid % 9 != 0, "NAME": first, "LAST_NAME": last, "SECOND_NAME": "",
            "EMAIL": email, "LAST_LOGIN": fmt_time(time.time() - uid * 3600), "DATE_REGISTER": fmt_time(reg),
            "TIME_ZONE": "", "IS_ONLINE": "Y" if uid % 3 == 0 else "N",
            "TIMESTAMP_X": time.strftime("%d.%m.%Y %H:%M:%S", time.gmtime(reg)),
            "LAST_ACTIVITY_DATE": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(reg + 3600)),
            "PERSONAL_GENDER": "F" if first.endswith("a") or first.endswith("я") else "M", "PERSONAL_WWW": "",
            "PERSONAL_BIRTHDAY": "", "PERSONAL_MOBILE": f"+7999{uid:07d}", "PERSONAL_CITY": rnd.choice(CITIES),
            "WORK_PHONE": "", "WORK_POSITION": "Head" if uid <= 8 else "Manager", "UF_EMPLOYMENT_DATE": "",
            "UF_DEPARTMENT": [dep], "USER_TYPE": "employee", "IS_ADMIN": uid in (1, 2),
        }
    for did, d in crm.departments.items():
        if did <= min(8, n_users):
            d["UF_HEAD"] = str(did)


def seed_portal(portal: PortalState, size: int, seed: int = 1) -> None:
    """Fill a portal's (empty) CRM deterministically. ``size`` is the number of deals."""
    crm: CrmState = portal.crm
    rnd = random.Random(seed)
    n_users = max(12, min(300, size // 400 + 12))
    _dictionaries(crm)
    ufs = _user_fields(crm)
    _people(crm, rnd, n_users)
    if size <= 0:
        return
    now = time.time()
    span = now - _T0
    fm_next = crm._fm_ids.__next__
    active = [u for u in range(1, n_users + 1) if u % 9]

    def stamp() -> tuple[float, float]:
        c = _T0 + rnd.random() * span
        return c, min(now, c + rnd.random() * 90 * 86400)

    def phones_emails(i: int, with_mail: bool) -> list:
        fm = [[fm_next(), "PHONE", rnd.choice(("WORK", "MOBILE")), f"+7{9000000000 + i * 7 % 999999999}"]]
        if i % 4 == 0:
            fm.append([fm_next(), "PHONE", "HOME", f"+4930{i:07d}"])
        if with_mail:
            fm.append([fm_next(), "EMAIL", "WORK", f"client{i}@example.org"])
        return fm

    n_comp, n_cont, n_lead = max(5, size // 10), max(10, size // 2), max(10, size // 2)
    store = crm.store(4)
    for i in range(1, n_comp + 1):
        c, m = stamp()
        title = rnd.choice(COMPANY_RU if i % 2 else COMPANY_EN) + f" {i}"
        store.insert({"id": i, "title": title, "typeId": rnd.choice(("CUSTOMER", "PARTNER", "SUPPLIER")),
                      "industry": rnd.choice(("IT", "BANKING", "OTHER")), "currencyId": "RUB", "opened": "Y",
                      "assignedById": rnd.choice(active), "createdBy": 1, "updatedBy": 1, "createdTime": c,
                      "updatedTime": m, "isMyCompany": "N", "addressCity": rnd.choice(CITIES),
                      "fm": phones_emails(i, True), "hasPhone": "Y", "hasEmail": "Y", "hasImol": "N"})
    store = crm.store(3)
    for i in range(1, n_cont + 1):
        c, m = stamp()
        ru = i % 2 == 0
        fm = phones_emails(i, i % 5 != 0)
        store.insert({"id": i, "name": rnd.choice(RU_FIRST if ru else EN_FIRST),
                      "lastName": rnd.choice(RU_LAST if ru else EN_LAST), "typeId": "CLIENT", "sourceId": "WEB",
                      "companyId": rnd.randint(1, n_comp), "opened": "Y", "export": "Y",
                      "assignedById": rnd.choice(active), "createdBy": 1, "updatedBy": 1, "createdTime": c,
                      "updatedTime": m, "fm": fm, "hasPhone": "Y", "hasEmail": "Y" if i % 5 else "N",
                      "hasImol": "N"})
    store = crm.store(1)
    lead_stages = ["NEW", "IN_PROCESS", "PROCESSED", "CONVERTED", "JUNK"]
    for i in range(1, n_lead + 1):
        c, m = stamp()
        st = rnd.choice(lead_stages)
        store.insert({"id": i, "title": f"Лид #{i}" if i % 2 else f"Lead #{i}", "name": rnd.choice(EN_FIRST),
                      "lastName": rnd.choice(EN_LAST), "stageId": st,
                      "stageSemanticId": {"CONVERTED": "S", "JUNK": "F"}.get(st, "P"),
                      "sourceId": rnd.choice(("WEB", "CALL", "ADVERTISING")), "currencyId": "RUB",
                      "opportunity": float(rnd.randint(10, 500) * 1000), "isManualOpportunity": "N", "opened": "Y",
                      "assignedById": rnd.choice(active), "createdBy": 1, "updatedBy": 1, "createdTime": c,
                      "updatedTime": m, "fm": phones_emails(i + 500000, True) + (
                          [[fm_next(), "IM", "TELEGRAM", f"@lead{i}"]] if i % 3 == 1 else []),
                      "hasPhone": "Y", "hasEmail": "Y", "hasImol": "Y" if i % 3 == 1 else "N"})
    stages = {cid: [s["STATUS_ID"] for s in crm.stages(2, cid)] for cid in (0, 1, 2)}
    deal_ufs = {f.uf["USER_TYPE_ID"]: f for f in ufs[2]}
    enum_ids = [int(e["ID"]) for e in deal_ufs["enumeration"].uf["LIST"]]
    store = crm.store(2)
    for i in range(1, size + 1):
        c, m = stamp()
        cid = 0 if i % 5 < 3 else (1 if i % 5 == 3 else 2)
        st = rnd.choice(stages[cid])
        sem = "S" if st.endswith("WON") else "F" if st.endswith("LOSE") else "P"
        rec = {"id": i, "title": (f"Сделка #{i}" if i % 3 else f"Deal #{i}"), "typeId": "SALE", "categoryId": cid,
               "stageId": st, "stageSemanticId": sem, "closed": "N" if sem == "P" else "Y", "isNew": "N",
               "opportunity": float(rnd.randint(1, 2000) * 500), "currencyId": "RUB" if i % 4 else "EUR",
               "isManualOpportunity": "N", "taxValue": 0.0, "opened": "Y", "companyId": rnd.randint(1, n_comp),
               "contactId": rnd.randint(1, n_cont), "sourceId": "WEB", "assignedById": rnd.choice(active),
               "createdBy": 1, "updatedBy": 1, "movedBy": 1, "createdTime": c, "updatedTime": m, "movedTime": m,
               "begindate": c - c % 86400, "closedate": c - c % 86400 + 30 * 86400}
        rec["contactIds"] = [rec["contactId"]]
        if i % 2:
            rec[deal_ufs["string"].key] = "Клиент из рекламы" if i % 4 == 1 else "Repeat customer"
            rec[deal_ufs["integer"].key] = i % 5 + 1
            rec[deal_ufs["double"].key] = round(30 + (i % 90) * 1.5, 1)
            rec[deal_ufs["boolean"].key] = i % 3 == 0 and 1 or 0
            rec[deal_ufs["enumeration"].key] = enum_ids[i % len(enum_ids)]
            rec[deal_ufs["money"].key] = f"{(i % 50 + 1) * 1000}|RUB"
            rec[deal_ufs["employee"].key] = rnd.choice(active)
            rec[deal_ufs["crm"].key] = f"C_{rec['contactId']}"
            rec[deal_ufs["date"].key] = c - c % 86400
        store.insert(rec)
    n_apart, n_contr = max(5, size // 20), max(3, size // 40)
    a_uf, k_uf = ufs[APARTMENTS], ufs[CONTRACTS]
    a_enum = [int(e["ID"]) for e in a_uf[3].uf["LIST"]]
    store = crm.store(APARTMENTS)
    for i in range(1, n_apart + 1):
        c, m = stamp()
        st = rnd.choice(crm.stages(APARTMENTS, 3))["STATUS_ID"]
        store.insert({"id": i, "title": f"Кв. {i}, {rnd.choice(CITIES)}", "categoryId": 3, "stageId": st,
                      "opened": "Y", "assignedById": rnd.choice(active), "createdBy": 1, "updatedBy": 1,
                      "createdTime": c, "updatedTime": m, "currencyId": "RUB", "opportunity": 0.0,
                      a_uf[0].key: round(25 + rnd.random() * 100, 1), a_uf[1].key: rnd.randint(1, 5),
                      a_uf[2].key: f"ул. Ленина, {i}|;|{i}", a_uf[3].key: a_enum[i % len(a_enum)]})
    store = crm.store(CONTRACTS)
    for i in range(1, n_contr + 1):
        c, m = stamp()
        st = rnd.choice(crm.stages(CONTRACTS, 4))["STATUS_ID"]
        store.insert({"id": i, "title": f"Rental contract {i}", "categoryId": 4, "stageId": st, "opened": "Y",
                      "assignedById": rnd.choice(active), "createdBy": 1, "updatedBy": 1, "createdTime": c,
                      "updatedTime": m, "contactId": rnd.randint(1, n_cont), "currencyId": "RUB",
                      "opportunity": float(rnd.randint(20, 150) * 1000),
                      k_uf[0].key: f"T80_{rnd.randint(1, n_apart)}", k_uf[1].key: f"{rnd.randint(20, 150)}000|RUB",
                      k_uf[2].key: c - c % 86400, k_uf[3].key: c - c % 86400 + 365 * 86400})
