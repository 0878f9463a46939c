"""``shipnav secrets set / list / delete / rotate-key / generate-key``.

Credentials kept in the ledger, encrypted with the Fernet key in SHIPNAV_SECRET_KEY. Each one
stands in for the environment variable of the same name; a variable set in the environment always
wins over the stored value. Values are never printed.
"""

import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

import click
import sqlalchemy as sa

from shipnav_dagster.ledger.secret_store import (
    KEY_HINT,
    KEY_VARIABLE,
    STORABLE,
    SecretStore,
    SecretStoreError,
    SecretUsageError,
    StoredSecret,
    describe_db_error,
    fernet,
    generate_key,
    secret_name,
    sqlite_file_missing,
)


class SettingsLike(Protocol):
    """What the commands read from ``Settings``."""

    @property
    def database_url(self) -> str: ...


@click.group(
    "secrets",
    help="Credentials kept in the ledger, encrypted with the Fernet key in SHIPNAV_SECRET_KEY. Each "
    "one stands in for the environment variable of the same name; a variable set in the environment "
    "always wins over the stored value. Values are never printed.",
    short_help="store credentials encrypted in the ledger (SHIPNAV_SECRET_KEY); the environment wins",
)
def secrets() -> None:
    pass


@secrets.command(
    "set",
    help="Store NAME (prompted without echo on a terminal, else read from standard input). One "
    "trailing newline of standard input is removed; an empty value is refused.",
)
@click.argument("name", metavar="NAME")
def set_secret(name: str) -> int:
    return run_command("set", name=name)


@secrets.command("list", help="Names and dates of the stored secrets (never values).")
def list_secrets() -> int:
    return run_command("list")


@secrets.command("delete", help="Delete a stored secret.")
@click.argument("name", metavar="NAME")
def delete_secret(name: str) -> int:
    return run_command("delete", name=name)


@secrets.command(
    "rotate-key",
    help="Re-encrypt every stored secret under a new key (one transaction). The old key is "
    "SHIPNAV_SECRET_KEY; the new key comes from --new-key-file or standard input.",
)
@click.option("--new-key-file", metavar="PATH", help="file holding the new key")
def rotate_key(new_key_file: str | None) -> int:
    return run_command("rotate-key", new_key_file=new_key_file)


@secrets.command("generate-key", help="Print a new random key for SHIPNAV_SECRET_KEY.")
def generate() -> int:
    return run_command("generate-key")


def run_command(
    command: str,
    *,
    name: str = "",
    new_key_file: str | None = None,
    read_settings: Callable[[], SettingsLike] | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """One ``shipnav secrets`` subcommand: 0 done, 1 failed, 2 refused (name, value, key, settings)."""
    from shipnav_dagster.settings import SettingsError, read_environment

    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    try:
        if command == "generate-key":
            print(generate_key(), file=out)
            return 0
        # read_environment, not load_settings: these commands must work when the key is wrong.
        settings = (read_settings or read_environment)()
        key = _key_of(settings)
        url = settings.database_url
        if command == "set":
            return command_set(name, url, key, _from_environment(settings), stdin, out)
        if command == "list":
            return command_list(url, _from_environment(settings), out)
        if command == "delete":
            return command_delete(name, url, out)
        if command == "rotate-key":
            return command_rotate(url, key, read_new_key(new_key_file, stdin), out)
        raise SecretUsageError(f"unknown command {command!r}")
    except (SecretUsageError, SettingsError) as exc:
        print(f"shipnav secrets {command}: {exc}", file=err)
        return 2
    except (SecretStoreError, ValueError, OSError) as exc:
        # OSError: an unreadable key file.
        print(f"shipnav secrets {command}: {exc}", file=err)
        return 1
    except sa.exc.DBAPIError as exc:
        print(
            f"shipnav secrets {command}: the ledger could not be reached ({describe_db_error(exc)})", file=err
        )
        return 1


def _key_of(settings: SettingsLike) -> str | None:
    value = getattr(settings, "shipnav_secret_key", None)
    text = value.get_secret_value() if value is not None else ""
    return text.strip() or None


def _from_environment(settings: SettingsLike) -> frozenset[str]:
    """Storable names the environment (or ``.env``) sets; those win over a stored value."""
    return frozenset(name for name in STORABLE if _is_set(getattr(settings, name.lower(), None)))


def _is_set(value: object) -> bool:
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return text not in (None, "")


def read_value(name: str, stdin: TextIO) -> str:
    """The value to store: prompted without echo on a terminal, else all of standard input.

    Exactly one trailing newline is removed (``echo`` and here-strings add one); anything else,
    leading or trailing spaces included, is part of the value.
    """
    if stdin.isatty():
        return getpass.getpass(f"{name} (input hidden): ")
    value = stdin.read()
    for newline in ("\r\n", "\n"):
        if value.endswith(newline):
            return value[: -len(newline)]
    return value


def read_new_key(path: str | None, stdin: TextIO) -> str:
    if path is not None:
        return Path(path).read_text(encoding="ascii")
    if stdin.isatty():
        return getpass.getpass(f"new {KEY_VARIABLE} (input hidden): ")
    return stdin.read()


def command_set(
    name: str, url: str, key: str | None, in_environment: frozenset[str], stdin: TextIO, out: TextIO
) -> int:
    name = secret_name(name)
    key = _require_key(key)
    fernet(key)  # a bad key is reported before the operator types the value
    value = read_value(name, stdin)
    if value == "":
        raise SecretUsageError(f"refusing to store an empty {name}")
    with SecretStore.open(url) as store:
        created = store.ensure_table().put(name, value, key)
    print(f"{'stored' if created else 'replaced'} {name} (encrypted with {KEY_VARIABLE})", file=out)
    if name in in_environment:
        print(f"note: {name} is also set in the environment, which wins over the stored value", file=out)
    return 0


def command_list(url: str, in_environment: frozenset[str], out: TextIO) -> int:
    stored = _stored(url)
    if not stored:
        print("no secrets stored", file=out)
        return 0
    width = max(len(s.name) for s in stored)
    print(f"{'NAME':<{width}}  {'CREATED (UTC)':<19}  UPDATED (UTC)", file=out)
    for s in stored:
        note = "  (overridden by the environment)" if s.name in in_environment else ""
        print(f"{s.name:<{width}}  {_stamp(s.created_at)}  {_stamp(s.updated_at)}{note}", file=out)
    return 0


def command_delete(name: str, url: str, out: TextIO) -> int:
    name = secret_name(name)
    deleted = False
    if not sqlite_file_missing(url):
        with SecretStore.open(url) as store:
            deleted = store.has_table() and store.delete(name)
    if not deleted:
        print(f"{name} is not stored", file=out)
        return 1
    print(f"deleted {name}", file=out)
    return 0


def command_rotate(url: str, key: str | None, new_key: str, out: TextIO) -> int:
    old_key = _require_key(key)
    new_key = new_key.strip()
    if not new_key:
        raise SecretUsageError(f"no new key given: {KEY_HINT}, then pass it on stdin or with --new-key-file")
    if new_key == old_key:
        raise SecretUsageError(f"the new key is the one in {KEY_VARIABLE} already; nothing to rotate")
    fernet(new_key, what="the new key")
    names: list[str] = []
    if not sqlite_file_missing(url):
        with SecretStore.open(url) as store:
            names = store.rotate(old_key, new_key) if store.has_table() else []
    print(
        f"re-encrypted {len(names)} stored secret(s) under the new key: {', '.join(names) or '-'}", file=out
    )
    print(
        f"Now set {KEY_VARIABLE} to the new key everywhere shipnav runs (the Dagster code location, the "
        "daemon, the webhook receiver, your shell); the old key no longer decrypts the store.",
        file=out,
    )
    return 0


def _require_key(key: str | None) -> str:
    if not key:
        raise SecretUsageError(
            f"{KEY_VARIABLE} is not set: {KEY_HINT}, keep it safe, and set it in the environment of "
            "every shipnav process"
        )
    return key


def _stored(url: str) -> list[StoredSecret]:
    if sqlite_file_missing(url):
        return []
    with SecretStore.open(url) as store:
        return store.entries() if store.has_table() else []


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
