"""Who gets in: local accounts with argon2 password hashes, sessions with an idle timeout,
a lockout after repeated failed sign-ins, and the audit log of every view and action."""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal import schema as s

IDLE_TIMEOUT = timedelta(minutes=15)
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SET_PASSWORD_VALID = timedelta(days=3)
MIN_PASSWORD_LENGTH = 12
_HASHER = PasswordHasher()
# verified against when the email is unknown, so that a wrong email takes as long as a wrong password
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Session:
    token: str
    user_id: int
    email: str
    clinician_id: str
    clinics: tuple[str, ...]
    csrf_token: str


class LoginRefused(Exception):
    """The sign-in failed; the message is what the person is shown (never which part was wrong)."""


class AccountError(ValueError):
    pass


class Accounts:
    def __init__(self, engine: AsyncEngine, now: Callable[[], datetime] = _utcnow) -> None:
        self.engine = engine
        self.now = now

    # --- accounts -----------------------------------------------------------------

    async def add_user(self, email: str, clinics: list[str], clinician_id: str | None = None) -> str:
        """Create (or extend) an account; returns a one-time set-password token."""
        email = email.strip().lower()
        if "@" not in email or not clinics:
            raise AccountError("an account needs an email address and at least one clinic")
        async with self.engine.begin() as conn:
            user_id = (await conn.execute(select(s.users.c.id).where(s.users.c.email == email))).scalar()
            if user_id is None:
                user_id = (await conn.execute(insert(s.users).values(
                    email=email, clinician_id=clinician_id or email.split("@")[0], failed_logins=0, created_at=self.now(),
                ))).inserted_primary_key[0]
            known = set((await conn.execute(select(s.memberships.c.clinic_id).where(s.memberships.c.user_id == user_id))).scalars())
            for clinic in sorted(set(clinics) - known):
                await conn.execute(insert(s.memberships).values(user_id=user_id, clinic_id=clinic))
            token = secrets.token_urlsafe(32)
            await conn.execute(insert(s.password_tokens).values(
                token_hash=_digest(token), user_id=user_id, expires_at=self.now() + SET_PASSWORD_VALID, used=False))
        return token

    async def set_password(self, token: str, password: str) -> str:
        """Use a one-time token; returns the account's email."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        t = s.password_tokens.c
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(t.user_id, t.expires_at, t.used).where(t.token_hash == _digest(token)))).first()
            if row is None or row.used or row.expires_at < self.now():
                raise AccountError("this link is not valid any more: ask for a new one")
            await conn.execute(update(s.password_tokens).where(t.token_hash == _digest(token)).values(used=True))
            await conn.execute(update(s.users).where(s.users.c.id == row.user_id).values(
                password_hash=_HASHER.hash(password), failed_logins=0, locked_until=None))
            return (await conn.execute(select(s.users.c.email).where(s.users.c.id == row.user_id))).scalar_one()

    # --- sessions -----------------------------------------------------------------

    async def login(self, email: str, password: str) -> Session:
        refusal, token = await self._check_password(email.strip().lower(), password)
        if refusal:
            raise LoginRefused(refusal)
        found = await self.session(token)
        assert found is not None
        return found

    async def _check_password(self, email: str, password: str) -> tuple[str | None, str]:
        """(why the sign-in is refused, or None; the new session's token). The failure
        count is committed with the refusal: it is what the lockout counts."""
        u = s.users.c
        async with self.engine.begin() as conn:
            user = (await conn.execute(select(s.users).where(u.email == email))).first()
            if user is None or not user.password_hash:
                _verify(_DUMMY_HASH, password)
                return "wrong email or password", ""
            if user.locked_until and user.locked_until > self.now():
                return "too many failed sign-ins: try again in 15 minutes", ""
            if not _verify(user.password_hash, password):
                failed = user.failed_logins + 1
                locked = self.now() + LOCKOUT if failed >= MAX_FAILED_LOGINS else None
                await conn.execute(update(s.users).where(u.id == user.id).values(
                    failed_logins=0 if locked else failed, locked_until=locked))
                return ("too many failed sign-ins: try again in 15 minutes" if locked else "wrong email or password"), ""
            await conn.execute(update(s.users).where(u.id == user.id).values(failed_logins=0, locked_until=None))
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            await conn.execute(insert(s.sessions).values(
                token_hash=_digest(token), user_id=user.id, csrf_token=csrf, created_at=self.now(), last_seen_at=self.now()))
        return None, token

    async def session(self, token: str | None, *, touch: bool = True) -> Session | None:
        """The signed-in session, or None when unknown or idle for longer than 15 minutes."""
        if not token:
            return None
        ss, u = s.sessions.c, s.users.c
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(ss.user_id, ss.csrf_token, ss.last_seen_at, u.email, u.clinician_id)
                                      .join_from(s.sessions, s.users, ss.user_id == u.id)
                                      .where(ss.token_hash == _digest(token)))).first()
            if row is None:
                return None
            if self.now() - row.last_seen_at > IDLE_TIMEOUT:
                await conn.execute(delete(s.sessions).where(ss.token_hash == _digest(token)))
                return None
            if touch:
                await conn.execute(update(s.sessions).where(ss.token_hash == _digest(token)).values(last_seen_at=self.now()))
            clinics = tuple(sorted((await conn.execute(
                select(s.memberships.c.clinic_id).where(s.memberships.c.user_id == row.user_id))).scalars()))
        return Session(token, row.user_id, row.email, row.clinician_id, clinics, row.csrf_token)

    async def logout(self, token: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(s.sessions).where(s.sessions.c.token_hash == _digest(token)))

    # --- audit --------------------------------------------------------------------

    async def audit(self, action: str, *, user_email: str | None, clinic_id: str | None = None,
                    target: str | None = None, remote: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(s.audit).values(at=self.now(), user_email=user_email, clinic_id=clinic_id,
                                                      action=action, target=target, remote=remote))

    async def audit_csv(self, since: datetime | None = None) -> str:
        query = select(s.audit).order_by(s.audit.c.id)
        if since:
            query = query.where(s.audit.c.at >= since)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["at", "user", "clinic", "action", "target", "from"])
        async with self.engine.connect() as conn:
            for row in await conn.execute(query):
                writer.writerow([row.at.isoformat(), row.user_email or "", row.clinic_id or "", row.action, row.target or "", row.remote or ""])
        return out.getvalue()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
