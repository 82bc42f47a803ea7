"""The deployment recipe (deploy/, docs/deployment.md) as committed: `check --deploy` is clean with its settings,
the example secrets are refused until replaced, nginx's limits match the application's, and the Procfile and the
systemd units run the same commands."""

import re
import secrets
import subprocess
import sys

from tests.deploy.recipe import DEPLOY, NGINX_TEMPLATE, ROOT, env_file, procfile

SYSTEMD = DEPLOY / "systemd"


def settings_env(tmp_path, secrets_env: dict[str, str]) -> dict[str, str]:
    """The documented environment: paperpipeline.env and a secrets.env, with the state folders moved to tmp_path
    (the documented /var/lib/paperpipeline belongs to the service user), the metrics directory too."""
    return {
        "PATH": "/usr/bin:/bin",
        **env_file(DEPLOY / "paperpipeline.env"),
        **secrets_env,
        "PAPERPIPELINE_VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }


def filled_secrets() -> dict[str, str]:
    """secrets.env.example with its placeholders replaced, as the operator does."""
    example = env_file(DEPLOY / "secrets.env.example")
    password = secrets.token_urlsafe(16)
    return {
        **{key: value.replace("PASSWORD", password) for key, value in example.items()},
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    }


def test_check_deploy_is_clean_with_the_documented_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
        env=settings_env(tmp_path, filled_secrets()), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert not (tmp_path / "var" / "secret_key").exists(), "the configured key is used, none generated"


def test_the_example_secret_key_is_refused_until_replaced(tmp_path):
    example = env_file(DEPLOY / "secrets.env.example")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=settings_env(tmp_path, example),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is too weak" in result.stderr


def test_nginx_body_limit_and_timeouts_follow_the_application_settings():
    from django.conf import settings

    documented = env_file(DEPLOY / "paperpipeline.env")
    limit = int(documented["HTTP_MAX_BODY_BYTES"])
    # The documented limit is the application's default for the documented upload size.
    assert limit == int(documented["PAPER_MAX_UPLOAD_BYTES"]) + 1024 * 1024 == settings.HTTP_MAX_BODY_BYTES
    template = NGINX_TEMPLATE.read_text()
    assert "client_max_body_size ${PP_MAX_BODY_BYTES};" in template
    assert f"PP_MAX_BODY_BYTES={limit}" in template, "the rendering example uses the documented limit"
    websocket = re.search(r"location = /ws/papers \{(.*?)\}", template, re.S).group(1)
    heartbeat = settings.WS_PING_INTERVAL + settings.WS_PING_TIMEOUT
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        seconds = int(re.search(rf"{directive} (\d+)s;", websocket).group(1))
        assert seconds > heartbeat, (directive, seconds, heartbeat)


def systemd_command(unit: str) -> str:
    """A unit's ExecStart, written as the Procfile writes it (python on PATH, $PORT, Celery's %h)."""
    text = (SYSTEMD / unit).read_text()
    command = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
    return command.replace("/srv/paperpipeline/.venv/bin/python", "python").replace("%i", "$PORT").replace("%H", "%h")


def test_the_procfile_and_the_systemd_units_run_the_same_processes():
    units = {
        "web": "paperpipeline-web@.service",
        "worker": "paperpipeline-worker@.service",
        "system-worker": "paperpipeline-system-worker.service",
        "beat": "paperpipeline-beat.service",
    }
    assert {name: systemd_command(unit) for name, unit in units.items()} == procfile()
    for unit in units.values():
        text = (SYSTEMD / unit).read_text()
        assert "EnvironmentFile=/etc/paperpipeline/paperpipeline.env" in text
        assert "EnvironmentFile=/etc/paperpipeline/secrets.env" in text
        assert "PartOf=paperpipeline.target" in text and "WantedBy=paperpipeline.target" in text


def test_every_unit_starts_after_the_metrics_directory_was_emptied():
    """The processes of a host share PROMETHEUS_MULTIPROC_DIR; the reset unit empties that very directory first."""
    directory = env_file(DEPLOY / "paperpipeline.env")["PROMETHEUS_MULTIPROC_DIR"]
    reset = (SYSTEMD / "paperpipeline-metrics-reset.service").read_text()
    assert f"ExecStart=/usr/bin/find {directory} -maxdepth 1 -name *.db -delete" in reset
    assert "RemainAfterExit=yes" in reset and "PartOf=paperpipeline.target" in reset
    for unit in ("paperpipeline-web@.service", "paperpipeline-worker@.service", "paperpipeline-system-worker.service",
                 "paperpipeline-beat.service"):
        text = (SYSTEMD / unit).read_text()
        assert "Wants=paperpipeline-metrics-reset.service" in text, unit
        assert re.search(r"^After=.*\bpaperpipeline-metrics-reset\.service\b", text, re.M), unit
