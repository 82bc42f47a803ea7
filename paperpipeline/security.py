"""HTTP hardening: the Content Security Policy and where plain HTTP may be served.

The policy names the page's own WebSocket origin."""

import ipaddress
import os
import sys

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy, plus this host's ws:/wss: origin in connect-src: CSP Level 2 browsers do not count
    a same-host WebSocket as 'self'."""

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        """The configured policy, with the WebSocket origin of the host that served the page."""
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()  # validated against ALLOWED_HOSTS: no header value lands in the policy
        except DisallowedHost:
            return parts
        scheme = "wss" if request.is_secure() else "ws"
        parts.update = {**(parts.update or {}), "connect-src": [f"{scheme}://{host}"]}
        return parts


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare_https_setting(host: str) -> None:
    """Relax the HTTPS-only settings (DJANGO_HTTPS=false) by default only for a loopback bind, and say so
    whenever plain HTTP is served to other machines or HTTPS is expected from a proxy."""
    if is_loopback(host):
        os.environ.setdefault("DJANGO_HTTPS", "false")
    elif os.environ.get("DJANGO_HTTPS", "").strip().lower() in {"0", "false", "no", "off"}:
        print(f"WARNING: DJANGO_HTTPS=false on {host}: sessions and tokens cross the network in clear text.",
              file=sys.stderr, flush=True)
    else:
        print(f"{host} is not a loopback address: HTTPS-only settings stay on (HSTS, secure cookies, redirect "
              "to https). Serve through a TLS proxy and set DJANGO_PROXY_SSL_HEADER.", file=sys.stderr, flush=True)
