"""Tokens: client credentials in, short-lived JWTs out, and their verification.

PyJWT is used directly rather than aiohttp-jwt (measured broken on current Python, see
docs/development.md): the algorithm is pinned (never taken from the token header),
``exp``/``iat``/``sub`` are required and ``aud``/``iss`` checked. Client secrets are stored as SHA-256 hashes and compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from .config import AuthConfig, ClientConfig
from .errors import ConfigError, Forbidden, Unauthorized

log = logging.getLogger("ingest_server.auth")

MAX_TOKEN_LENGTH = 4096  # a longer bearer token is refused before any parsing
VERIFIED_KEPT = 1024  # tokens whose signature and claims were checked, kept until they expire


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    client: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this token lacks the '{scope}' scope", code="insufficient_scope",
                            required_scope=scope)


def parse_basic(header: str) -> tuple[str, str]:
    """``(login, password)`` from an ``Authorization: Basic …`` value; Unauthorized if malformed."""
    kind, _, encoded = header.strip().partition(" ")
    try:
        if kind.lower() != "basic":
            raise ValueError
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials", code="invalid_client") from None
    login, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized("malformed Basic credentials", code="invalid_client")
    return login, password


def hash_secret(secret: str) -> str:
    """The value to put in ``auth.clients[].secret_sha256`` for a client secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_version(signing_key: str, secret_sha256: str) -> str:
    """The ``sv`` claim binding a token to its client's current secret: rotating the secret
    (a new ``secret_sha256``) revokes every token issued before. Keyed with the signing key so
    a token never carries a plain hash of the secret."""
    return hmac.new(signing_key.encode(), secret_sha256.encode(), hashlib.sha256).hexdigest()[:22]


class TokenService:
    """Issues and verifies tokens for the configured clients."""

    def __init__(self, cfg: AuthConfig, *, secret: str = "", base_dir: Path = Path(".")) -> None:
        self.cfg = cfg
        self.algorithm = cfg.algorithm
        if cfg.algorithm.startswith("RS"):
            self._signing_key = _read_key(base_dir, cfg.private_key_file, "auth.private_key_file")
            if cfg.public_key_file:
                self._verify_key = _read_key(base_dir, cfg.public_key_file, "auth.public_key_file")
            else:
                from cryptography.hazmat.primitives import serialization

                private = serialization.load_pem_private_key(self._signing_key.encode(), None)
                self._verify_key = private.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        else:
            key = cfg.jwt_secret or secret
            if not key:
                raise ConfigError("auth.jwt_secret: no secret configured")
            self._signing_key = self._verify_key = key
        self._clients = {c.id: c for c in cfg.clients}
        # token -> its claims, once its signature and claims passed (a client sends the same
        # token with every request: ~60 us of PyJWT each time). The keys cannot change under a
        # TokenService; expiry and revocation are still checked on every request.
        self._verified: dict[str, dict] = {}

    def authenticate_client(self, client_id: str, secret: str) -> ClientConfig:
        """Check Basic credentials; the same error whatever was wrong, so ids cannot be probed."""
        client = self._clients.get(client_id)
        expected = client.secret_sha256 if client else hash_secret(secrets.token_hex(16))
        ok = hmac.compare_digest(hash_secret(secret), expected)
        if not ok or client is None:
            raise Unauthorized("invalid client credentials", code="invalid_client")
        if client.disabled:
            raise Unauthorized("invalid client credentials", code="invalid_client")
        return client

    def secret_version(self, client: ClientConfig) -> str:
        return secret_version(self._signing_key, client.secret_sha256)

    def issue(self, subject: str, scopes: tuple[str, ...] | frozenset[str]) -> dict:
        """A token for a configured client (bound to its secret version), or for the open token
        endpoint (any other subject: marked ``open``, valid only while the endpoint is open)."""
        now = int(time.time())
        client = self._clients.get(subject)
        binding = {"sv": self.secret_version(client)} if client else {"open": True}
        claims = {**binding,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + self.cfg.token_ttl_s,
            "iss": self.cfg.issuer,
            "aud": self.cfg.audience,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(sorted(scopes)),
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
        return {"token": token, "token_type": "Bearer", "expires_in": self.cfg.token_ttl_s,
                "scope": claims["scope"]}

    def derive_key(self, purpose: str) -> bytes:
        """An HMAC key for another use (signed download URLs), derived from the signing key, so
        every process and replica that verifies tokens agrees on it without another secret."""
        return hmac.new(self._signing_key.encode("utf-8"), purpose.encode("utf-8"),
                        hashlib.sha256).digest()

    def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("token too long", code="invalid_token")
        claims = self._verified.get(token)
        if claims is not None and time.time() < claims["exp"] + self.cfg.leeway_s:
            return self._principal(claims)
        claims = self._decode(token)
        if len(self._verified) >= VERIFIED_KEPT:
            self._verified.clear()
        self._verified[token] = claims
        return self._principal(claims)

    def _decode(self, token: str) -> dict:
        """The token's claims once its signature, times, audience and issuer are checked."""
        try:
            claims = jwt.decode(
                token, self._verify_key, algorithms=[self.algorithm],
                audience=self.cfg.audience, issuer=self.cfg.issuer, leeway=self.cfg.leeway_s,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", code="token_expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token not valid yet", code="invalid_token") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("token audience is wrong", code="invalid_token") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token issuer is wrong", code="invalid_token") from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthorized(f"token lacks the '{e.claim}' claim", code="invalid_token") from None
        except jwt.InvalidTokenError:
            # One line, no traceback: a flood of bad tokens must not flood the log.
            raise Unauthorized("token is invalid", code="invalid_token") from None
        scope = claims.get("scope", "")
        if not isinstance(scope, str) or not isinstance(claims["sub"], str) \
                or not isinstance(claims["exp"], (int, float)):
            raise Unauthorized("token claims are malformed", code="invalid_token")
        return claims

    def _principal(self, claims: dict) -> Principal:
        """Who the checked ``claims`` are, with the scopes the configuration allows now."""
        scopes = frozenset(claims.get("scope", "").split())
        allowed = self._current_scopes(claims)
        return Principal(client=claims["sub"],
                         scopes=scopes if allowed is None else scopes & allowed)

    def _current_scopes(self, claims: dict) -> frozenset[str] | None:
        """What the token's subject may still do under the configuration running now: checked on
        every request, so disabling, removing or re-keying a client revokes its tokens at once
        (one generic 401: a caller learns nothing about which clients exist)."""
        if claims.get("open") is True:
            if self.cfg.open_token_endpoint:
                return None  # the scopes the open endpoint gave
        else:
            client = self._clients.get(claims["sub"])
            if client is not None and not client.disabled and isinstance(claims.get("sv"), str) \
                    and hmac.compare_digest(claims["sv"], self.secret_version(client)):
                return frozenset(client.scopes)
        raise Unauthorized("token revoked: its client is no longer allowed or its secret changed",
                           code="token_revoked")


def _read_key(base_dir: Path, name: str, key: str) -> str:
    path = Path(name) if Path(name).is_absolute() else base_dir / name
    try:
        return path.read_text(encoding="ascii")
    except OSError as e:
        raise ConfigError(f"{key}: cannot read {path}: {e.strerror}") from None
