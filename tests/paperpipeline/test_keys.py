"""Signing keys: a published key is refused, tokens signed with it are refused, and with no key configured
each installation generates its own, once, even when several processes start at the same moment. DEBUG is
off unless asked for, so no technical page shows the configuration."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from paperpipeline import keys
from realtime.protocol import CLOSE_AUTHENTICATION_FAILED
from tests.conftest import communicator, token_for

ROOT = Path(__file__).resolve().parents[2]
# The development key this repository used to ship, and sign every JWT with.
PUBLISHED_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
TIMEOUT = 5


def settings_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a fresh process with default settings: no key or mode configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JWT_"))}
    return {**env, "DJANGO_SETTINGS_MODULE": "paperpipeline.settings", "PAPERPIPELINE_VAR_DIR": str(var_dir),
            **overrides}


def django_setup(var_dir: Path, **overrides: str) -> subprocess.CompletedProcess:
    """Load the settings in a new process, as Daphne or a worker does."""
    return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=settings_env(var_dir, **overrides))


def forged(token: str) -> str:
    """The claims of a genuine token, signed again with the published key, as an attacker would."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, PUBLISHED_KEY, algorithm="HS256")


@pytest.mark.parametrize("debug", ["true", "false"])
@pytest.mark.parametrize("variable", ["DJANGO_SECRET_KEY", "JWT_SIGNING_KEY"])
def test_the_published_key_is_refused_whatever_debug_is(tmp_path, variable, debug):
    result = django_setup(tmp_path, **{variable: PUBLISHED_KEY, "DJANGO_DEBUG": debug})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and f"{variable} is a published key" in result.stderr


@pytest.mark.parametrize("key", ["short-but-secret", "a" * 80, "django-insecure-" + "x1y2z3" * 10])
def test_weak_and_startproject_keys_are_refused(key):
    with pytest.raises(ImproperlyConfigured):
        keys.check_key(key, "DJANGO_SECRET_KEY")


def test_a_configured_secret_key_gives_a_derived_jwt_key_shared_by_every_host(tmp_path, monkeypatch):
    secret = "s3cr3t-" * 10
    monkeypatch.setenv("DJANGO_SECRET_KEY", secret)
    monkeypatch.delenv("JWT_SIGNING_KEY", raising=False)
    first = keys.jwt_signing_key(secret, tmp_path / "a" / "jwt_signing_key")
    assert first == keys.jwt_signing_key(secret, tmp_path / "b" / "jwt_signing_key") != secret
    assert not (tmp_path / "a").exists()  # nothing generated: it comes from the configured secret


def test_processes_starting_at_once_share_one_generated_key_kept_private(tmp_path):
    """Daphne, the workers and beat load the settings at the same moment on a fresh installation."""
    script = (
        "import os, sys; os.umask(0)\n"  # even a permissive umask must not widen the key files
        "print('ready', flush=True); sys.stdin.read()\n"  # all wait here, then load the settings together
        "import django; django.setup(); from django.conf import settings\n"
        "print(settings.SECRET_KEY, settings.SIMPLE_JWT['SIGNING_KEY'])\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=settings_env(tmp_path), text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    for process in processes:
        assert process.stdout.readline() == "ready\n", process.stderr.read()
    for process in processes:
        process.stdin.close()  # the starting gun
    outputs = {process.stdout.read().strip() for process in processes}
    assert [process.wait(timeout=60) for process in processes] == [0] * len(processes)
    secret_file, jwt_file = tmp_path / "secret_key", tmp_path / "jwt_signing_key"
    assert outputs == {f"{secret_file.read_text().strip()} {jwt_file.read_text().strip()}"}
    assert secret_file.read_text() != jwt_file.read_text()
    for path in (secret_file, jwt_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jwt_signing_key", "secret_key"]  # no temporary left

    # A later start reuses them.
    again = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=settings_env(tmp_path), input="",
                           capture_output=True, text=True, timeout=60)
    assert again.stdout.splitlines()[-1] in outputs


def test_many_racing_first_starts_always_agree_on_one_complete_key(tmp_path):
    """Rounds of processes that all ask for the same new key at once, woken together: each round agrees."""
    script = (
        "import sys; from pathlib import Path; from paperpipeline.keys import installation_key\n"
        "for line in sys.stdin: print(installation_key(Path(line.strip())), flush=True)\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=settings_env(tmp_path), text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in range(8)
    ]
    try:
        for round_ in range(30):
            path = tmp_path / str(round_) / "secret_key"
            for process in processes:
                process.stdin.write(f"{path}\n")
            for process in processes:
                process.stdin.flush()
            assert {process.stdout.readline() for process in processes} == {path.read_text()}
    finally:
        for process in processes:
            process.stdin.close()
            assert process.wait(timeout=30) == 0


def test_a_damaged_key_file_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "secret_key").write_text("x\n")
    result = django_setup(tmp_path)
    assert result.returncode != 0
    assert "delete it to generate a new one" in result.stderr


def test_a_key_that_cannot_be_stored_is_a_clear_configuration_error(tmp_path):
    (tmp_path / "var").write_text("a file where the folder should be")
    with pytest.raises(ImproperlyConfigured, match="Cannot keep a generated key"):
        keys.installation_key(tmp_path / "var" / "secret_key")


@pytest.mark.django_db
def test_a_token_signed_with_the_published_key_is_refused_by_the_api(staff_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(staff_user)}")
    assert client.get("/api/papers/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged(token_for(staff_user))}")
    assert client.get("/api/papers/").status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_a_token_signed_with_the_published_key_is_refused_by_the_websocket(staff_user):
    ws = communicator()
    assert (await ws.connect(timeout=TIMEOUT))[0]
    await ws.send_json_to({"type": "authenticate", "token": forged(token_for(staff_user))})
    reply = await ws.receive_json_from(timeout=TIMEOUT)
    assert reply["type"] == "error" and reply["code"] == "authentication_failed", reply
    assert await ws.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": CLOSE_AUTHENTICATION_FAILED}


UNKNOWN_URL_SCRIPT = """
import django; django.setup()
from django.test import Client
response = Client().get("/no-such-page/", HTTP_HOST="localhost", secure=True)
print(response.status_code)
print(response.content.decode())
"""


def test_an_unknown_url_gets_a_plain_404_with_default_settings(tmp_path):
    """Outside the test runner, which forces DEBUG off itself: the settings as `make run` loads them."""
    result = subprocess.run([sys.executable, "-c", UNKNOWN_URL_SCRIPT], cwd=ROOT, env=settings_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.split("\n", 1)
    assert status == "404"
    assert "Using the URLconf" not in body and "paperpipeline.urls" not in body and "Not Found" in body
