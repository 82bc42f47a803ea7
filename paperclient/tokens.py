"""JWTs from the server's API: obtain with a username and password, refresh with the rotating refresh token."""

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

MAX_RESPONSE_BYTES = 64 * 1024  # a token reply is a few hundred bytes: never read an unbounded body


class AuthenticationError(Exception):
    """The server refused the credentials or the token, and there is nothing left to retry with."""


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (seconds since the epoch), read without verifying: only to plan a refresh."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def _post_json(url: str, body: dict, timeout: float) -> tuple[int, dict]:
    """POST a JSON body; the status and the decoded JSON reply (empty when it is not JSON)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the caller's own URL)
            status, raw = response.status, response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(MAX_RESPONSE_BYTES)
    try:
        reply = json.loads(raw)
    except ValueError:
        reply = {}
    return status, reply if isinstance(reply, dict) else {}


@dataclass
class Tokens:
    """An access token, and what renews it: a refresh token, and optionally the password it came from."""

    api_url: str
    access: str | None = None
    refresh: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    def expires_at(self) -> float | None:
        """When the access token expires (epoch seconds), if it says."""
        return token_expiry(self.access) if self.access else None

    def fresh_for(self, seconds: float) -> bool:
        """Whether the access token is still valid `seconds` from now (a token without exp counts as valid)."""
        expiry = self.expires_at()
        return self.access is not None and (expiry is None or expiry - time.time() > seconds)

    async def obtain(self) -> str:
        """A new pair from the username and password (POST /api/token/)."""
        if not (self.username and self.password is not None):
            raise AuthenticationError("no username and password to obtain a token with")
        status, reply = await asyncio.to_thread(
            _post_json, f"{self.api_url}/token/", {"username": self.username, "password": self.password}, self.timeout
        )
        return self._accept(status, reply, "login")

    async def renew(self) -> str:
        """A new access token: from the refresh token when there is one, else from the password."""
        if self.refresh:
            status, reply = await asyncio.to_thread(
                _post_json, f"{self.api_url}/token/refresh/", {"refresh": self.refresh}, self.timeout
            )
            if status == 200 or status >= 500:
                return self._accept(status, reply, "refresh")
            if status != 429:
                self.refresh = None  # refused for good (blacklisted, expired): only the password can help now
            if not self.username:
                raise AuthenticationError(f"token refresh refused: HTTP {status} {reply.get('code', '')}".strip())
        return await self.obtain()

    def _accept(self, status: int, reply: dict, what: str) -> str:
        """Keep the tokens of a successful reply; a refusal is an AuthenticationError (its code, no secrets)."""
        if status >= 500:
            # The server (or its proxy) is failing, not refusing: a ConnectionError is retried like a lost socket.
            raise ConnectionError(f"{what}: HTTP {status}")
        if status != 200 or not isinstance(reply.get("access"), str):
            raise AuthenticationError(f"{what} refused: HTTP {status} {reply.get('code', '')}".strip())
        self.access = reply["access"]
        # Rotation: each refresh returns a new refresh token and blacklists the one sent, so keep the new one.
        self.refresh = reply.get("refresh") or self.refresh
        return self.access
