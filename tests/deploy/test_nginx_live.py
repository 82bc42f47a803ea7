"""The deployment recipe end to end: Debian's nginx with deploy/nginx.conf (TLS) in front of two Daphne processes
started by the Procfile's commands with the HTTPS-only settings, a Celery worker, beat and Redis.

Uploads, static files, the event log and the WebSocket all go through nginx. One Daphne process is killed while a
paper is processed: the client it held reconnects through nginx, reaches the surviving process, resumes with
`since` and ends with every event of the paper exactly once; the client on the other process never notices.
"""

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import SAMPLE_TEXT
from tests.deploy.recipe import nginx_main_config, procfile_commands, render_nginx
from tests.e2e.conftest import running_system
from tests.e2e.slow_extractor import GATE_MARKER, MARKER
from tests.e2e.test_pipeline_live import request, token, upload
from tests.e2e.test_scale_out_live import TIMEOUT, Client, event_log

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NGINX = os.environ.get("NGINX", shutil.which("nginx") or "/usr/sbin/nginx")
HOST = "127.0.0.1"
CLIENT_ADDRESS = "127.0.0.2"  # a loopback address of the client's own: nginx itself reaches Daphne from 127.0.0.1
SPOOFED_ADDRESS = "203.0.113.9"
MAX_UPLOAD = 1024 * 1024  # small limits keep the over-the-limit uploads quick
MAX_BODY = MAX_UPLOAD + 1024 * 1024


@pytest.fixture
def alice(django_user_model):
    django_user_model.objects.create_user(username="alice", password="pw-alice-123")
    return ("alice", "pw-alice-123")


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def free_ports(count: int) -> list[int]:
    """Ports free right now, distinct."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind((HOST, 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@contextlib.contextmanager
def running_nginx(prefix: Path, values: dict[str, str]):
    """nginx in the foreground with the rendered site, every path under prefix; stopped on exit."""
    assert Path(NGINX).exists(), f"nginx not found at {NGINX}: `make test` installs Debian's nginx"
    prefix.mkdir()
    site, main = prefix / "paperpipeline.conf", prefix / "nginx.conf"
    site.write_text(render_nginx(values))
    main.write_text(nginx_main_config(prefix, site, pwd.getpwuid(os.geteuid()).pw_name))
    command = [NGINX, "-p", f"{prefix}/", "-c", str(main), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        port = int(values["PP_HTTPS_LISTEN"].rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while True:  # a port opening has no event to await
            assert process.poll() is None, (prefix / "error.log").read_text()
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                break
            assert time.monotonic() < deadline, "nginx did not listen:\n" + (prefix / "error.log").read_text()
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def ws_connect(site: SimpleNamespace, **kwargs):
    """A WebSocket to /ws/papers through nginx, over TLS, as a browser on the site's page opens it (Origin)."""
    return connect(site.ws_url, ssl=site.tls, origin=site.base_url, local_addr=(CLIENT_ADDRESS, 0), **kwargs)


async def paper_client(site, access: str, paper_id: str, label: str, *, since: int = 0) -> tuple[Client, dict]:
    """Authenticate and subscribe to the paper from `since` (the log after it is replayed, then live events)."""
    ws = await ws_connect(site, additional_headers={"X-Forwarded-For": SPOOFED_ADDRESS})
    assert (await request(ws, {"type": "authenticate", "token": access, "id": "a"}))["type"] == "authenticated"
    reply = await request(ws, {"type": "subscribe", "paper_id": paper_id, "since": since, "id": "s"})
    assert reply["type"] == "subscribed" and reply["recovery"]["complete"], reply
    return Client(label, ws, {paper_id}), reply


def connect_log_clients(system) -> set[str]:
    """The client addresses the Daphne processes logged for their WebSocket connections (JSON logs)."""
    addresses = set()
    for name, path in system.logs.items():
        if "daphne" in name:
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict) and record.get("event") == "ws.connect":
                        addresses.add(str(record["client"]))
    return addresses


async def test_nginx_in_front_of_two_daphnes_survives_one_dying_mid_paper(
    own_redis, alice, certificate, tmp_path, monkeypatch
):
    from django.core.management import call_command
    from django.test import override_settings

    cert, key = certificate
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # every requests call trusts the test's certificate
    static_root = tmp_path / "staticfiles"
    with override_settings(STATIC_ROOT=static_root):  # collected as `manage.py collectstatic` does, for nginx
        call_command("collectstatic", interactive=False, verbosity=0)
    gate = tmp_path / "gate-open"
    http_port, https_port = free_ports(2)
    with running_system(
        redis_url=own_redis, name="deploy-", daphnes=2, commands_for=procfile_commands, E2E_GATE_FILE=str(gate),
        # The documented production settings (deploy/paperpipeline.env) for this host name.
        DJANGO_HTTPS="true", DJANGO_PROXY_SSL_HEADER="X-Forwarded-Proto", DJANGO_ALLOWED_HOSTS=HOST,
        PAPER_MAX_UPLOAD_BYTES=str(MAX_UPLOAD), HTTP_MAX_BODY_BYTES=str(MAX_BODY), LOG_FORMAT="json",
    ) as system, running_nginx(tmp_path / "nginx", {
        "PP_SERVER_NAME": HOST, "PP_HTTP_LISTEN": f"{HOST}:{http_port}", "PP_HTTPS_LISTEN": f"{HOST}:{https_port}",
        "PP_TLS_CERT": str(cert), "PP_TLS_KEY": str(key), "PP_STATIC_ROOT": str(static_root),
        "PP_WEB_1": system.base_urls[0].removeprefix("http://"), "PP_WEB_2": system.base_urls[1].removeprefix("http://"),
        "PP_MAX_BODY_BYTES": str(MAX_BODY),
    }):
        site = SimpleNamespace(
            base_url=f"https://{HOST}:{https_port}", ws_url=f"wss://{HOST}:{https_port}/ws/papers",
            tls=ssl.create_default_context(cafile=str(cert)),
        )
        # Plain http is only a redirect to https.
        plain = await asyncio.to_thread(requests.get, f"http://{HOST}:{http_port}/login/", allow_redirects=False,
                                        timeout=10)
        assert plain.status_code == 301 and plain.headers["Location"].startswith(f"https://{HOST}"), plain.headers
        # Static files come from nginx (its lifetime, not WhiteNoise's 60 s), byte for byte the collected ones.
        static = await asyncio.to_thread(requests.get, f"{site.base_url}/static/paperpipeline/client.js", timeout=10)
        assert static.status_code == 200
        assert static.content == (static_root / "paperpipeline" / "client.js").read_bytes()
        assert static.headers["Cache-Control"] == "max-age=300", static.headers
        # Django sees https (the redirect setting is on, and nothing redirects) and serves its HTTPS-only headers.
        login = await asyncio.to_thread(requests.get, f"{site.base_url}/login/", allow_redirects=False, timeout=10)
        assert login.status_code == 200, (login.status_code, login.headers)
        assert "Strict-Transport-Security" in login.headers
        # /metrics through nginx is not local (nginx sets X-Forwarded-For): refused without METRICS_TOKEN, while a
        # scrape on the host, straight to a Daphne process, is let in (docs/operations.md, "Metrics").
        proxied = await asyncio.to_thread(requests.get, f"{site.base_url}/metrics", timeout=10)
        assert proxied.status_code == 403 and "paperpipeline_" not in proxied.text, proxied.text
        direct = await asyncio.to_thread(requests.get, f"{system.base_urls[0]}/metrics", timeout=30)
        assert direct.status_code == 200 and "paperpipeline_ws_connections" in direct.text

        access = await token(site, *alice)
        # A body over the application's limit stops at nginx; one under it reaches the application, which refuses
        # a file over the upload limit itself.
        too_big = await asyncio.to_thread(
            requests.post, f"{site.base_url}/api/papers/", files={"file": ("big.txt", b"a" * (MAX_BODY + 1))},
            headers={"Authorization": f"Bearer {access}"}, timeout=30,
        )
        assert too_big.status_code == 413 and "nginx" in too_big.text, too_big.text[:200]
        over_upload = await asyncio.to_thread(
            requests.post, f"{site.base_url}/api/papers/", files={"file": ("big.txt", b"a" * (MAX_UPLOAD + 1))},
            headers={"Authorization": f"Bearer {access}"}, timeout=30,
        )
        assert (over_upload.status_code, over_upload.json()["code"]) == (400, "file_too_large"), over_upload.text

        # A browser on another site is refused at the handshake, through the proxy too.
        with pytest.raises(InvalidStatus) as refused:
            await connect(site.ws_url, ssl=site.tls, origin="https://evil.example")
        assert refused.value.response.status_code == 403

        # The paper waits at the gate mid-pipeline; two clients, opened one after the other, are shared by nginx
        # between the two processes (one worker process, round robin).
        paper = await upload(site, access, "gated.txt", f"{GATE_MARKER}\n{MARKER}\n{SAMPLE_TEXT}".encode())
        first, _ = await paper_client(site, access, paper["id"], "first")
        second, _ = await paper_client(site, access, paper["id"], "second")
        clients = [first, second]
        resumed = late = None
        try:
            for client in clients:
                await client.wait_for_status([paper["id"]], "processing")

            system.processes["deploy-daphne"].send_signal(signal.SIGKILL)
            done, _ = await asyncio.wait([c.reader for c in clients], timeout=TIMEOUT,
                                         return_when=asyncio.FIRST_COMPLETED)
            assert len(done) == 1, f"exactly one client was on the killed process: {done}"
            dropped = next(c for c in clients if c.reader in done)
            steady = next(c for c in clients if c is not dropped)
            have = dropped.events[-1]["seq"]
            assert [e["seq"] for e in dropped.events] == list(range(1, have + 1))

            # The paper goes on while the dropped client is away: the other one sees events it missed.
            gate.touch()
            async with asyncio.timeout(TIMEOUT), steady.changed:
                await steady.changed.wait_for(lambda: steady.reader.done() or steady.events[-1]["seq"] > have)
            assert not steady.reader.done(), steady.reader

            # Reconnect through nginx (which skips the dead process) and resume where the dropped client stopped.
            resumed, reply = await paper_client(site, access, paper["id"], "resumed", since=have)
            assert reply["recovery"]["since"] == have and reply["recovery"]["replayed"] >= 1, reply
            # A second client reconnecting right after it: of two connections in a row, nginx's round robin offers
            # one to the dead process first, and must pass it on to the live one.
            late, _ = await paper_client(site, access, paper["id"], "late", since=have)
            for client in (steady, resumed, late):
                await client.wait_for_status([paper["id"]], "completed")

            log = await event_log(site, access, paper["id"])
            assert [e["seq"] for e in log] == list(range(1, len(log) + 1)) and log[-1]["new_status"] == "completed"
            received = dropped.events + resumed.events
            assert [e["seq"] for e in received] == [e["seq"] for e in log], "every event exactly once"
            assert received == log
            assert dropped.events + late.events == log
            assert steady.events == log
            assert not steady.reader.done(), "the client on the surviving process was never dropped"
        finally:
            for client in [*clients, *(c for c in (resumed, late) if c)]:
                await client.close()
            gate.touch()

        # Daphne took the client's address from nginx's X-Forwarded-For, never the one the client sent.
        addresses = connect_log_clients(system)
        assert CLIENT_ADDRESS in addresses and SPOOFED_ADDRESS not in addresses, addresses
        # And nginx did pass a WebSocket handshake on from the dead process to the live one.
        errors = (tmp_path / "nginx" / "error.log").read_text()
        assert re.search(rf"\(111: Connection refused\) while connecting to upstream, client: {CLIENT_ADDRESS}, .*"
                         r'request: "GET /ws/papers HTTP/1\.1"', errors), errors
