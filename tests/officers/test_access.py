"""Users, API tokens and console sessions: hashed at rest, revocable, and shut by disabling."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.officers.errors import Conflict, Invalid, NotFound
from alertcast.officers.roles import Principal, Role
from alertcast.officers.sessions import SessionStore
from alertcast.officers.tokens import TokenStore
from alertcast.officers.users import UserStore
from alertcast.store.tables import api_tokens, users, web_sessions
from tests.officers.conftest import ADMIN, Clock

PASSWORD = "correct horse battery"


def test_roles_are_ordered_and_a_principal_acts_as_user_name() -> None:
    assert Role.ADMIN.allows(Role.APPROVER) and Role.APPROVER.allows(Role.OFFICER)
    assert Role.OFFICER.allows(Role.VIEWER) and Role.OFFICER.allows(Role.OFFICER)
    assert not Role.OFFICER.allows(Role.APPROVER) and not Role.VIEWER.allows(Role.OFFICER)
    assert Principal("ana", Role.OFFICER, "cli").actor == "user:ana"
    with pytest.raises(ValueError, match="not a role"):
        Role.parse("boss")


async def test_a_password_is_stored_as_argon2id_and_checked(
    user_store: UserStore, engine: AsyncEngine
) -> None:
    user = await user_store.add("ana", Role.OFFICER, password=PASSWORD, actor=ADMIN)
    assert user.has_password and user.display_name == "ana" and not user.disabled

    async with engine.connect() as conn:
        stored = (await conn.execute(select(users.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    checked = await user_store.check_password("ana", PASSWORD)
    assert checked is not None and checked.name == "ana" and checked.last_login_at is not None
    assert await user_store.check_password("ana", "wrong password") is None
    assert await user_store.check_password("nobody", PASSWORD) is None

    record = (await audit.tail(engine, 1))[0]
    assert (record.actor, record.action, record.subject) == (ADMIN, "user.added", "user:ana")
    assert PASSWORD not in json.dumps(record.data) and "argon2" not in json.dumps(record.data)


async def test_bad_names_passwords_and_duplicates_are_refused(user_store: UserStore) -> None:
    with pytest.raises(Invalid, match=r"^name:"):
        await user_store.add("Ana Pérez", Role.OFFICER, actor=ADMIN)
    with pytest.raises(Invalid, match=r"^name:"):
        await user_store.add("a" * 65, Role.OFFICER, actor=ADMIN)
    with pytest.raises(Invalid, match=r"^password:"):
        await user_store.add("ana", Role.OFFICER, password="short", actor=ADMIN)
    await user_store.add("ana", Role.OFFICER, actor=ADMIN)
    with pytest.raises(Conflict, match="already exists"):
        await user_store.add("ana", Role.ADMIN, actor=ADMIN)
    assert await user_store.count() == 1
    assert await user_store.check_password("ana", PASSWORD) is None  # no password set
    with pytest.raises(NotFound):
        await user_store.set_password("bob", PASSWORD, actor=ADMIN)


async def test_tokens_are_shown_once_stored_hashed_and_scoped(
    user_store: UserStore, token_store: TokenStore, engine: AsyncEngine
) -> None:
    await user_store.add("ana", Role.APPROVER, actor=ADMIN)
    token, info = await token_store.create("ana", role=Role.VIEWER, label="dashboard", actor=ADMIN)
    assert token.startswith("act_") and len(token) > 40
    assert info.prefix == token[:8] and info.role is Role.VIEWER and info.label == "dashboard"

    async with engine.connect() as conn:
        row = (await conn.execute(select(api_tokens))).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_hash, row.prefix, row.label)
    trail = " ".join(json.dumps(r.data) for r in await audit.tail(engine, 5))
    assert token not in trail

    assert await token_store.authenticate(token) == Principal("ana", Role.VIEWER, "token")
    assert await token_store.authenticate(token + "x") is None
    assert await token_store.authenticate("act_" + "A" * 43) is None
    assert await token_store.authenticate("") is None
    full, _ = await token_store.create("ana", actor=ADMIN)
    assert (await token_store.authenticate(full)) == Principal("ana", Role.APPROVER, "token")
    with pytest.raises(Invalid, match=r"^role:"):
        await token_store.create("ana", role=Role.ADMIN, actor=ADMIN)
    with pytest.raises(NotFound):
        await token_store.create("bob", actor=ADMIN)
    assert [t.id for t in await token_store.list("ana")] == [info.id + 1, info.id]


async def test_last_use_is_noted_at_most_once_a_minute(
    user_store: UserStore, token_store: TokenStore, clock: Clock
) -> None:
    await user_store.add("ana", Role.OFFICER, actor=ADMIN)
    token, _ = await token_store.create("ana", actor=ADMIN)
    await token_store.authenticate(token)
    first = (await token_store.list())[0].last_used_at
    assert first == clock.now
    clock.advance(seconds=20)
    await token_store.authenticate(token)
    assert (await token_store.list())[0].last_used_at == first
    clock.advance(seconds=60)
    await token_store.authenticate(token)
    assert (await token_store.list())[0].last_used_at == clock.now


async def test_a_revoked_token_authenticates_nobody(
    user_store: UserStore, token_store: TokenStore, engine: AsyncEngine
) -> None:
    await user_store.add("ana", Role.OFFICER, actor=ADMIN)
    token, info = await token_store.create("ana", actor=ADMIN)
    revoked = await token_store.revoke(info.id, actor=ADMIN)
    assert revoked.revoked_at is not None
    assert await token_store.authenticate(token) is None
    again = await token_store.revoke(info.id, actor=ADMIN)
    assert again.revoked_at == revoked.revoked_at
    actions = [r.action for r in await audit.tail(engine, 10)]
    assert actions.count("token.revoked") == 1
    with pytest.raises(NotFound):
        await token_store.revoke(info.id + 100, actor=ADMIN)


async def test_disabling_a_user_shuts_every_door(
    user_store: UserStore,
    token_store: TokenStore,
    session_store: SessionStore,
    engine: AsyncEngine,
) -> None:
    user = await user_store.add("ana", Role.APPROVER, password=PASSWORD, actor=ADMIN)
    token, _ = await token_store.create("ana", actor=ADMIN)
    cookie, _ = await session_store.create(user)

    disabled = await user_store.disable("ana", actor=ADMIN)

    assert disabled.disabled
    assert await token_store.authenticate(token) is None
    assert await session_store.get(cookie) is None
    assert await user_store.check_password("ana", PASSWORD) is None
    assert all(t.revoked_at is not None for t in await token_store.list("ana"))
    with pytest.raises(Conflict, match="disabled"):
        await token_store.create("ana", actor=ADMIN)
    with pytest.raises(Conflict, match="disabled"):
        await session_store.create(disabled)
    record = (await audit.tail(engine, 1))[0]
    assert record.action == "user.disabled" and record.actor == ADMIN
    with pytest.raises(NotFound):
        await user_store.disable("bob", actor=ADMIN)


async def test_sessions_are_stored_hashed_and_carry_a_csrf_token(
    user_store: UserStore, session_store: SessionStore, engine: AsyncEngine, clock: Clock
) -> None:
    user = await user_store.add("ana", Role.OFFICER, password=PASSWORD, actor=ADMIN)
    cookie, session = await session_store.create(user)
    assert session.principal == Principal("ana", Role.OFFICER, "session")
    assert session.expires_at == clock.now + session_store._lifetime
    async with engine.connect() as conn:
        row = (await conn.execute(select(web_sessions))).one()
    assert row.id_hash == hashlib.sha256(cookie.encode()).hexdigest() and cookie != row.id_hash

    found = await session_store.get(cookie)
    assert found is not None and found.csrf_token == session.csrf_token
    assert await session_store.get(cookie[:-1]) is None
    assert await session_store.get("") is None

    await session_store.end(cookie)
    assert await session_store.get(cookie) is None
    actions = [r.action for r in await audit.tail(engine, 3)]
    assert actions[-2:] == ["session.started", "session.ended"]


async def test_a_session_ends_when_idle_and_after_twelve_hours(
    user_store: UserStore, session_store: SessionStore, clock: Clock
) -> None:
    user = await user_store.add("ana", Role.OFFICER, password=PASSWORD, actor=ADMIN)
    idle_cookie, _ = await session_store.create(user)
    busy_cookie, _ = await session_store.create(user)
    for _ in range(25):  # 25 x 29 min: used all along, past the 12 h limit
        clock.advance(minutes=29)
        alive = await session_store.get(busy_cookie) is not None
        if clock.now - user.created_at < session_store._lifetime:
            assert alive
        else:
            assert not alive
        if clock.now - user.created_at > session_store._idle:
            assert await session_store.get(idle_cookie) is None


async def test_a_lowered_role_takes_effect_on_live_sessions_and_tokens(
    user_store: UserStore,
    token_store: TokenStore,
    session_store: SessionStore,
    engine: AsyncEngine,
) -> None:
    user = await user_store.add("ana", Role.ADMIN, actor=ADMIN)
    token, _ = await token_store.create("ana", actor=ADMIN)
    cookie, _ = await session_store.create(user)
    async with engine.begin() as conn:
        await conn.execute(users.update().values(role=Role.VIEWER.value))
    principal = await token_store.authenticate(token)
    session = await session_store.get(cookie)
    assert principal is not None and principal.role is Role.VIEWER
    assert session is not None and session.principal.role is Role.VIEWER
