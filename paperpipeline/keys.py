"""Signing keys: refused when published or weak, generated once per installation when none is configured.

With none configured, each installation generates its own once and keeps it under the var folder."""

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Keys that were published in this repository: anyone could sign sessions and tokens with them.
PUBLISHED_KEYS = frozenset({
    "dev-only-insecure-key-change-me-in-production-0123456789",  # the former development default
    "bench-secret-key-not-for-production-0123456789",  # the benchmark's former key
})
# `django-admin startproject` marks its generated key with this prefix: it lives in the project's source.
INSECURE_PREFIX = "django-insecure-"
# Django's own thresholds (check security.W009); a JWT HMAC key is at least as long as its SHA-256 digest.
MIN_LENGTH = 50
MIN_UNIQUE_CHARACTERS = 5


def check_key(key: str, source: str) -> str:
    """Return key, or refuse a published, startproject or short key whatever DEBUG is."""
    if key in PUBLISHED_KEYS or key.startswith(INSECURE_PREFIX):
        raise ImproperlyConfigured(
            f"{source} is a published key: anyone could forge sessions and tokens with it. "
            "Unset it to have a key generated for this installation, or set a new random one."
        )
    if len(key) < MIN_LENGTH or len(set(key)) < MIN_UNIQUE_CHARACTERS:
        raise ImproperlyConfigured(
            f"{source} is too weak: use at least {MIN_LENGTH} random characters "
            '(python -c "import secrets; print(secrets.token_urlsafe(48))").'
        )
    return key


def installation_key(path: Path) -> str:
    """The key kept in path (mode 0600), generated on first use; processes starting at once all get the one
    that was stored first."""
    try:
        try:
            return _read_key(path)
        except FileNotFoundError:
            _store_new_key(path)
        return _read_key(path)
    except OSError as error:
        raise ImproperlyConfigured(
            f"Cannot keep a generated key in {path} ({error}): make {path.parent} a writable folder, "
            "or configure the key (see README, Configuration)."
        ) from error


def _store_new_key(path: Path) -> None:
    """Store a new random key in path unless another process stores one first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written whole to a private temporary file, then linked into place: a reader never sees a partial key,
    # and link, unlike rename, fails rather than replace a key another process stored meanwhile.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won: its key is the one
    finally:
        os.unlink(temporary)


def _read_key(path: Path) -> str:
    """The checked key stored in path."""
    return check_key(path.read_text().strip(), f"The key file {path} (delete it to generate a new one)")


def configured_key(variable: str, path: Path) -> str:
    """The key from the environment variable, checked, or else this installation's key kept in path."""
    value = os.environ.get(variable)
    return check_key(value, variable) if value else installation_key(path)


def derived_key(secret: str, purpose: str) -> str:
    """A key for one purpose derived from a secret, so that one configured secret serves several uses
    without any of them signing with the secret itself."""
    return hmac.new(secret.encode(), f"paperpipeline.{purpose}".encode(), hashlib.sha256).hexdigest()


def jwt_signing_key(secret_key: str, path: Path) -> str:
    """JWT_SIGNING_KEY, checked; else derived from a configured DJANGO_SECRET_KEY, so that every host of a
    deployment shares it; else this installation's own key kept in path."""
    if os.environ.get("JWT_SIGNING_KEY"):
        return check_key(os.environ["JWT_SIGNING_KEY"], "JWT_SIGNING_KEY")
    if os.environ.get("DJANGO_SECRET_KEY"):
        return derived_key(secret_key, "jwt")
    return installation_key(path)
