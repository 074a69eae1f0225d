"""Secrets are encrypted at rest and survive key rotation."""
from cryptography.fernet import Fernet
from sqlalchemy import text

from app.crypto import SecretBox
from app.models import Portal, PortalToken
from app.secrets_rotation import rotate_all

ACCESS = "acc3ss-token-value-1234567890"
REFRESH = "refr3sh-token-value-0987654321"
APP_TOKEN = "app-token-abcdef123456"


def make_portal(db, member_id="m-1"):
    p = Portal(member_id=member_id, domain="example.bitrix24.com", application_token=APP_TOKEN,
               client_endpoint="https://example.bitrix24.com/rest/", server_endpoint="https://oauth.bitrix.info/rest/")
    p.token = PortalToken(access_token=ACCESS, refresh_token=REFRESH, user_id=1)
    db.add(p)
    db.commit()
    return p


def test_raw_tables_hold_no_plaintext_token(db):
    make_portal(db)
    raw = db.execute(text("SELECT p::text FROM portals p")).scalars().all() + \
        db.execute(text("SELECT t::text FROM portal_tokens t")).scalars().all()
    dump = "\n".join(raw)
    for secret in (ACCESS, REFRESH, APP_TOKEN):
        assert secret not in dump
    assert "gAAAAA" in dump  # Fernet ciphertext is what is stored
    db.expire_all()
    loaded = db.get(Portal, db.execute(text("SELECT id FROM portals")).scalar())
    assert loaded.token.access_token == ACCESS
    assert loaded.application_token == APP_TOKEN


def test_rotation_moves_every_secret_to_the_new_key(app, db):
    make_portal(db)
    old = app.config["TOKEN_ENCRYPTION_KEY"][0]
    new = Fernet.generate_key().decode()
    app.extensions["secret_box"] = SecretBox((new, old))
    assert rotate_all() == 3
    app.extensions["secret_box"] = SecretBox((new,))  # the old key is gone
    db.expire_all()
    token = db.execute(text("SELECT id FROM portal_tokens")).scalar()
    assert db.get(PortalToken, token).refresh_token == REFRESH
    assert db.get(PortalToken, token).portal.application_token == APP_TOKEN


def test_unreadable_secret_reads_as_absent_not_crash(app, db):
    make_portal(db)
    app.extensions["secret_box"] = SecretBox((Fernet.generate_key().decode(),))
    db.expire_all()
    assert db.execute(text("SELECT count(*) FROM portals")).scalar() == 1
    portal = db.query(Portal).one()
    assert portal.application_token is None
