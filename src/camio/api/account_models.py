"""Bodies and answers of the account routes: setup, session, password, users."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from camio.core.ports import Model

RoleName = Literal["admin", "operator", "viewer"]
Name = Annotated[str, Field(min_length=1, max_length=32)]
Password = Annotated[str, Field(min_length=1, max_length=128)]


class SetupStatus(Model):
    needed: bool


class SetupBody(Model):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    username: Name
    password: Password


class LoginBody(Model):
    username: Name
    password: Password


class UserOut(Model):
    name: str
    role: RoleName
    created: str | None = None


class SessionOut(Model):
    user: UserOut
    csrf_token: str | None


class PasswordChange(Model):
    old_password: Password
    new_password: Password


class UserList(Model):
    users: list[UserOut]


class UserCreate(Model):
    name: Name
    password: Password
    role: RoleName = "viewer"


class UserPatch(Model):
    role: RoleName | None = None
    password: Password | None = None
