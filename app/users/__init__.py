"""Hub24's own directory of each portal's users and departments (roles, passwords) and its sync from Bitrix24.

    passwords.py   unusable-by-default password hashes (werkzeug scrypt)
    portal.py      what Bitrix24 says: active users, administrators, one user, departments
    sync.py        the matching rules, the run record and report, jobs and the daily schedule
    cli.py         flask users sync [--portal X]
"""
