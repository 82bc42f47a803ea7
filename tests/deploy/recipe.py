"""The committed deployment recipe (deploy/), read as an operator uses it: env files, Procfile, nginx template."""

import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX_TEMPLATE = DEPLOY / "nginx.conf"
PLACEHOLDER = re.compile(r"\$\{(PP_[A-Z0-9_]+)\}")
# The Procfile's process names, as tests.e2e.conftest.running_system names the same processes.
PROCFILE_NAMES = {"web": "daphne", "worker": "worker", "system-worker": "system-worker", "beat": "beat"}


def env_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of a systemd EnvironmentFile (comments and blank lines skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def procfile() -> dict[str, str]:
    """The Procfile's command lines by process name."""
    entries = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def procfile_commands(*, port: str, concurrency: str = "2") -> dict[str, list[str]]:
    """The Procfile's commands for one $PORT, with this interpreter as `python` (the argument list a shell would
    build: no quoting or other expansion in them); named like the launcher's processes."""
    commands = {}
    for name, line in procfile().items():
        argv = shlex.split(line.replace("$PORT", port))
        assert argv[0] == "python", line
        commands[PROCFILE_NAMES[name]] = [sys.executable, *argv[1:]]
    return commands


def render_nginx(values: dict[str, str]) -> str:
    """deploy/nginx.conf with its ${PP_...} placeholders replaced (envsubst with those names does the same);
    every placeholder must be given, and nothing else is touched (nginx's own $variables stay)."""
    template = NGINX_TEMPLATE.read_text()
    missing = set(PLACEHOLDER.findall(template)) - set(values)
    assert not missing, f"no value for {sorted(missing)}"
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def nginx_main_config(prefix: Path, site: Path, user: str) -> str:
    """A main nginx.conf as Debian's, but every path under prefix, in the foreground, one worker (so requests are
    shared round-robin in order), including the site like Debian's http block includes sites-enabled/*."""
    return f"""
daemon off;
user {user};
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""
