"""Settings: a missing or malformed value stops start-up with one line naming the variable."""
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "DATABASE_URL": "postgresql://u@localhost:5432/db",
    "REDIS_URL": "redis://localhost:6379/0",
    "SECRET_KEY": "k" * 40,
    "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
}


def test_good_settings_parse_with_defaults():
    s = Settings.from_env(GOOD)
    assert s.B24_OAUTH_URL == "https://oauth.bitrix.info"
    assert s.OPENAI_MODEL == "gpt-4o-mini"
    assert s.B24_ALLOW_HTTP is False
    assert len(s.TOKEN_ENCRYPTION_KEY) == 1
    assert "k" * 40 not in repr(s)  # secrets stay out of reprs and logs


@pytest.mark.parametrize("var, value, words", [
    ("DATABASE_URL", None, "DATABASE_URL is required"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must be a URL starting with postgresql"),
    ("REDIS_URL", None, "REDIS_URL is required"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL must be a URL"),
    ("SECRET_KEY", "short", "SECRET_KEY is required: a random string of at least 32"),
    ("TOKEN_ENCRYPTION_KEY", None, "TOKEN_ENCRYPTION_KEY is required"),
    ("TOKEN_ENCRYPTION_KEY", "not-a-key", "TOKEN_ENCRYPTION_KEY must hold url-safe base64 Fernet keys"),
    ("B24_OAUTH_URL", "http://oauth.example", "B24_OAUTH_URL must be https://"),
    ("B24_ALLOW_HTTP", "maybe", "B24_ALLOW_HTTP must be true or false"),
    ("APP_BASE_URL", "ftp://x", "APP_BASE_URL must be a URL"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be"),
])
def test_bad_setting_names_the_variable(var, value, words):
    env = dict(GOOD)
    if value is None:
        env.pop(var)
    else:
        env[var] = value
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_key_rotation_list_and_http_oauth_for_sandbox():
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    s = Settings.from_env({**GOOD, "TOKEN_ENCRYPTION_KEY": ",".join(keys), "B24_ALLOW_HTTP": "true",
                           "B24_OAUTH_URL": "http://127.0.0.1:5100"})
    assert s.TOKEN_ENCRYPTION_KEY == tuple(keys)
    assert s.B24_OAUTH_URL == "http://127.0.0.1:5100"


def test_wsgi_start_up_stops_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **{k: v for k, v in GOOD.items() if k != "DATABASE_URL"}}
    proc = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "Warning" not in line and "return Path" not in line]
    assert lines == ["hub24: configuration error: DATABASE_URL is required: a PostgreSQL URL such as "
                     "postgresql://user@host:5432/hub24"]
