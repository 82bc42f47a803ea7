"""HTTP hardening with default settings: a clean `check --deploy`, HTTPS-only settings, a Content Security
Policy on every page, and plain HTTP only where the launcher binds a loopback address."""

import os
import subprocess
import sys

import pytest

from paperpipeline.security import is_loopback, prepare_https_setting
from tests.paperpipeline.test_keys import ROOT, settings_env


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = settings_env(tmp_path, DJANGO_DEBUG="false", DJANGO_ALLOWED_HOSTS="papers.example.org")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_are_https_only(tmp_path):
    script = (
        "import django; django.setup(); from django.conf import settings as s\n"
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " s.X_FRAME_OPTIONS, getattr(s, 'SECURE_PROXY_SSL_HEADER', None))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=settings_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "True", "True", "True", "31536000", "DENY", "None"], result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("secure, websocket", [(False, "ws://localhost"), (True, "wss://localhost")])
def test_pages_carry_a_strict_content_security_policy(client, secure, websocket):
    response = client.get("/login/", HTTP_HOST="localhost", secure=secure)
    assert response.status_code == 200
    policy = dict(
        (directive.split(" ", 1) + [""])[:2] for directive in response["Content-Security-Policy"].split("; ")
    )
    assert policy["default-src"] == policy["script-src"] == policy["style-src"] == "'self'"
    assert policy["connect-src"] == f"'self' {websocket}"
    assert policy["object-src"] == policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == policy["form-action"] == "'self'"
    assert response["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_or_style():
    """The policy refuses them; the pages would silently lose behaviour or layout."""
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert " style=" not in text and "<style" not in text, template
        for tag in text.split("<script")[1:]:
            assert " src=" in tag.split(">", 1)[0], template
        assert not any(f" on{event}=" in text for event in ("click", "load", "submit", "change", "error")), template


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_the_launcher_serves_plain_http_by_default_on_loopback(monkeypatch, host):
    monkeypatch.delenv("DJANGO_HTTPS", raising=False)
    assert is_loopback(host)
    prepare_https_setting(host)
    assert os.environ["DJANGO_HTTPS"] == "false"  # the launcher's children inherit it


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "papers.example.org"])
def test_the_launcher_never_relaxes_https_silently_off_loopback(monkeypatch, capsys, host):
    monkeypatch.delenv("DJANGO_HTTPS", raising=False)
    prepare_https_setting(host)
    assert "DJANGO_HTTPS" not in os.environ
    assert "HTTPS-only settings stay on" in capsys.readouterr().err
    monkeypatch.setenv("DJANGO_HTTPS", "false")  # the operator's explicit choice is kept, and called out
    prepare_https_setting(host)
    assert os.environ["DJANGO_HTTPS"] == "false"
    assert "WARNING: DJANGO_HTTPS=false" in capsys.readouterr().err
