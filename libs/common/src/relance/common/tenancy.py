"""Tenants: API keys (random, shown once, kept only as a SHA-256) and the bearer header.

A key has 256 bits of randomness, so a plain SHA-256 is enough to keep it safe at rest
(no slow password hash is needed) and lets a request find its organization by an index.
"""

from __future__ import annotations

import hashlib
import secrets

from fastapi import HTTPException, status

KEY_PREFIX = "rk_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_sha256(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def bearer_key(authorization: str | None) -> str:
    """The API key of an ``Authorization: Bearer <key>`` header; 401 if there is none."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="send the organization's API key as 'Authorization: Bearer <api_key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key.strip()


def unknown_key() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="unknown API key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def admin_token_matches(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and secrets.compare_digest(str(given), str(expected))
