"""Credentials stored encrypted in the ledger (``shipnav secrets``).

The commands are driven through ``shipnav_dagster.cli.main`` (and once as a real process with a
pipe on stdin); ``load_settings()`` is checked for the environment-wins rule, wrong and missing
keys, rotation, and the cost of looking (no query without a store, one query with one); and a
full ``shipnav_sync_job`` run gets its NAV_CLIENT_SECRET from the store alone.
"""

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from shipnav_dagster.cli import main
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger import secret_store as store
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import SettingsError, load_settings
from tests.support.sync_harness import (
    assert_written,
    clean_environment,
    harness_for,
    order_with_label,
    sqlite_instance,
    sqlite_ledger_url,
)

REPO = Path(__file__).resolve().parents[2]
VALUE = "nav-secret-Q7p!x 9"  # a space and punctuation: stored exactly, never printed


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean environment (no developer credentials, no .env) with an SQLite ledger."""
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout is read
    url = sqlite_ledger_url(tmp_path)
    monkeypatch.setenv("SHIPNAV_DATABASE_URL", url)
    return url


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = Fernet.generate_key().decode()
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", value)
    return value


def shipnav(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    """``shipnav ARGV`` in-process with ``stdin`` piped in; (exit code, stdout, stderr)."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_rows(url: str) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {r["name"]: dict(r) for r in conn.execute(sa.select(t.secrets)).mappings()}
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# set / list / delete / generate-key through the CLI
# --------------------------------------------------------------------------------------------


def test_set_list_delete_round_trip(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = shipnav(monkeypatch, capsys, "secrets", "set", "NAV_CLIENT_SECRET", stdin=VALUE + "\n")
    assert (code, err) == (0, "")
    assert "stored NAV_CLIENT_SECRET" in out and VALUE not in out
    assert load_settings().nav_client_secret.get_secret_value() == VALUE  # type: ignore[union-attr]

    # Only ciphertext in the ledger, and it carries neither the value nor the key.
    row = stored_rows(ledger_url)["NAV_CLIENT_SECRET"]
    assert VALUE not in row["ciphertext"] and key not in row["ciphertext"]
    assert row["created_at"] is not None and row["updated_at"] is not None

    # A lower-case name is the same variable (the settings are case-insensitive); set replaces.
    code, out, _ = shipnav(monkeypatch, capsys, "secrets", "set", "nav_client_secret", stdin="second")
    assert code == 0 and "replaced NAV_CLIENT_SECRET" in out
    assert load_settings().nav_client_secret.get_secret_value() == "second"  # type: ignore[union-attr]

    code, out, _ = shipnav(monkeypatch, capsys, "secrets", "list")
    assert code == 0 and "NAV_CLIENT_SECRET" in out and "second" not in out and VALUE not in out

    code, out, _ = shipnav(monkeypatch, capsys, "secrets", "delete", "NAV_CLIENT_SECRET")
    assert (code, out.strip()) == (0, "deleted NAV_CLIENT_SECRET")
    assert load_settings().nav_client_secret is None
    code, out, _ = shipnav(monkeypatch, capsys, "secrets", "delete", "NAV_CLIENT_SECRET")
    assert (code, out.strip()) == (1, "NAV_CLIENT_SECRET is not stored")
    code, out, _ = shipnav(monkeypatch, capsys, "secrets", "list")
    assert (code, out.strip()) == (0, "no secrets stored")


def test_every_storable_name_fills_its_setting(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in store.STORABLE:
        code, _, err = shipnav(monkeypatch, capsys, "secrets", "set", name, stdin=f"value-of-{name}")
        assert code == 0, err
    settings = load_settings()
    for name in store.STORABLE:
        value = getattr(settings, name.lower())
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        assert text == f"value-of-{name}"
    # Secret fields stay masked however they arrived (the client id and user name are not secret).
    for name in set(store.STORABLE) - {"NAV_CLIENT_ID", "NAV_USERNAME"}:
        assert f"value-of-{name}" not in repr(settings) and f"value-of-{name}" not in str(settings)
    assert "value-of-NAV_PASSWORD" in settings.secret_values()


def test_list_shows_names_and_dates_never_values(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shipnav(monkeypatch, capsys, "secrets", "set", "SHIPSTATION_API_SECRET", stdin="ss-secret-AAAA")
    shipnav(monkeypatch, capsys, "secrets", "set", "NAV_PASSWORD", stdin="nav-password-BBBB")
    monkeypatch.setenv("NAV_PASSWORD", "from-the-environment")
    code, out, err = shipnav(monkeypatch, capsys, "secrets", "list")
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "(UTC)", "UPDATED", "(UTC)"]
    assert [line.split()[0] for line in lines[1:]] == ["NAV_PASSWORD", "SHIPSTATION_API_SECRET"]
    assert "(overridden by the environment)" in lines[1] and "overridden" not in lines[2]
    for text in ("ss-secret-AAAA", "nav-password-BBBB", "from-the-environment", key):
        assert text not in out


def test_only_one_trailing_newline_is_removed(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {"NAV_PASSWORD": (" pw \n\n", " pw \n"), "NAV_CLIENT_SECRET": ("cs\r\n", "cs")}
    for name, (piped, _) in cases.items():
        assert shipnav(monkeypatch, capsys, "secrets", "set", name, stdin=piped)[0] == 0
    settings = load_settings()
    for name, (_, stored) in cases.items():
        assert getattr(settings, name.lower()).get_secret_value() == stored


def test_a_terminal_is_prompted_without_echo(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "typed-secret-1234"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", FakeTerminal("never read"))
    assert main(["secrets", "set", "SHIPNAV_WEBHOOK_TOKEN"]) == 0
    assert prompts == ["SHIPNAV_WEBHOOK_TOKEN (input hidden): "]
    assert "typed-secret-1234" not in capsys.readouterr().out
    assert load_settings().shipnav_webhook_token.get_secret_value() == "typed-secret-1234"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "stdin", "message"),
    [
        ("SHIPNAV_SECRET_KEY", "x", "SHIPNAV_SECRET_KEY cannot be stored"),
        ("SHIPNAV_DATABASE_URL", "x", "is not a credential shipnav stores"),
        ("PATH", "x", "is not a credential shipnav stores"),
        ("NAV_PASSWORD", "", "refusing to store an empty NAV_PASSWORD"),
        ("NAV_PASSWORD", "\n", "refusing to store an empty NAV_PASSWORD"),
    ],
)
def test_refused_names_and_values(
    ledger_url: str,
    key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    stdin: str,
    message: str,
) -> None:
    code, out, err = shipnav(monkeypatch, capsys, "secrets", "set", name, stdin=stdin)
    assert code == 2 and message in err and out == ""
    assert not Path(ledger_url.removeprefix("sqlite:///")).exists() or not stored_rows(ledger_url)


def test_set_needs_a_valid_key(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = shipnav(monkeypatch, capsys, "secrets", "set", "NAV_PASSWORD", stdin="pw-1234")
    assert code == 2 and "SHIPNAV_SECRET_KEY is not set" in err and "generate-key" in err
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", "not-a-fernet-key")
    code, _, err = shipnav(monkeypatch, capsys, "secrets", "set", "NAV_PASSWORD", stdin="pw-1234")
    assert code == 1 and "SHIPNAV_SECRET_KEY is not a valid Fernet key" in err
    assert "not-a-fernet-key" not in err and "pw-1234" not in err


def test_generate_key_prints_a_usable_key(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, _ = shipnav(monkeypatch, capsys, "secrets", "generate-key")
    _, second, _ = shipnav(monkeypatch, capsys, "secrets", "generate-key")
    assert code == 0 and first != second
    Fernet(first.strip().encode())  # raises if it were not a Fernet key


def test_set_via_a_real_process_with_piped_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {
        "SHIPNAV_DATABASE_URL": sqlite_ledger_url(tmp_path),
        "SHIPNAV_SECRET_KEY": Fernet.generate_key().decode(),
        "PYTHONPATH": str(REPO),
    }

    def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipnav_dagster.cli", *argv],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    done = run("secrets", "set", "SHIPSTATION_API_SECRET", stdin="piped-ss-secret-77\n")
    assert done.returncode == 0, done.stderr
    listed = run("secrets", "list")
    assert "SHIPSTATION_API_SECRET" in listed.stdout
    for text in (done.stdout, done.stderr, listed.stdout, listed.stderr):
        assert "piped-ss-secret-77" not in text
    monkeypatch.setenv("SHIPNAV_DATABASE_URL", env["SHIPNAV_DATABASE_URL"])
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", env["SHIPNAV_SECRET_KEY"])
    monkeypatch.chdir(tmp_path)
    assert load_settings().shipstation_api_secret.get_secret_value() == "piped-ss-secret-77"  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# load_settings(): environment wins, wrong and missing keys
# --------------------------------------------------------------------------------------------


def set_secret(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(value))
    assert main(["secrets", "set", name]) == 0


def test_environment_overrides_the_stored_value(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secret(monkeypatch, "NAV_CLIENT_SECRET", "stored-value")
    monkeypatch.setenv("NAV_CLIENT_SECRET", "environment-value")
    assert load_settings().nav_client_secret.get_secret_value() == "environment-value"  # type: ignore[union-attr]
    # Overrides passed to load_settings count as set too.
    assert load_settings(nav_client_secret="override").nav_client_secret.get_secret_value() == "override"  # type: ignore[union-attr]
    # A secret the environment sets is not even decrypted, so a wrong key cannot break it.
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", Fernet.generate_key().decode())
    assert load_settings().nav_client_secret.get_secret_value() == "environment-value"  # type: ignore[union-attr]


def test_wrong_key_is_an_error_naming_the_secret(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secret(monkeypatch, "NAV_CLIENT_SECRET", VALUE)
    wrong = Fernet.generate_key().decode()
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", wrong)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("SHIPNAV_SECRET_KEY cannot decrypt the stored NAV_CLIENT_SECRET: wrong key?")
    for text in (VALUE, key, wrong):
        assert text not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_invalid_key_is_an_error_that_does_not_echo_it(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secret(monkeypatch, "NAV_PASSWORD", VALUE)
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", "my-Passphrase-not-a-key")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "SHIPNAV_SECRET_KEY is not a valid Fernet key" in str(err.value)
    assert "my-Passphrase-not-a-key" not in str(err.value)


def test_missing_key_is_an_error_naming_the_secret(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secret(monkeypatch, "NAV_CLIENT_SECRET", VALUE)
    set_secret(monkeypatch, "NAV_PASSWORD", "pw-value-1234")
    monkeypatch.delenv("SHIPNAV_SECRET_KEY")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(
        "NAV_CLIENT_SECRET, NAV_PASSWORD are stored encrypted but SHIPNAV_SECRET_KEY is not set"
    )
    assert VALUE not in str(err.value)
    # With both set in the environment nothing stored is needed, so there is nothing to decrypt.
    monkeypatch.setenv("NAV_CLIENT_SECRET", "e1-value")
    monkeypatch.setenv("NAV_PASSWORD", "e2-value")
    assert load_settings().nav_password.get_secret_value() == "e2-value"  # type: ignore[union-attr]


def test_a_row_copied_onto_another_name_is_refused(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secret(monkeypatch, "SHIPSTATION_API_SECRET", "shipstation-value")
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        row = conn.execute(sa.select(t.secrets)).mappings().one()
        conn.execute(sa.insert(t.secrets).values({**row, "name": "NAV_PASSWORD"}))
    engine.dispose()
    with pytest.raises(SettingsError, match="the stored NAV_PASSWORD was encrypted for another name"):
        load_settings()


def test_set_refuses_a_key_that_cannot_open_the_other_secrets(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secret(monkeypatch, "NAV_CLIENT_SECRET", VALUE)
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", Fernet.generate_key().decode())
    code, _, err = shipnav(monkeypatch, capsys, "secrets", "set", "NAV_PASSWORD", stdin="pw-value-1234")
    assert code == 1 and "cannot decrypt the stored NAV_CLIENT_SECRET" in err
    assert set(stored_rows(ledger_url)) == {"NAV_CLIENT_SECRET"}
    # Replacing the one secret the key cannot open is allowed (the way out of a lost key).
    code, _, err = shipnav(monkeypatch, capsys, "secrets", "set", "NAV_CLIENT_SECRET", stdin="new-value")
    assert code == 0, err
    assert load_settings().nav_client_secret.get_secret_value() == "new-value"  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# rotate-key
# --------------------------------------------------------------------------------------------


def test_rotate_key_then_old_key_fails_and_new_key_works(
    ledger_url: str,
    key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_secret(monkeypatch, "NAV_CLIENT_SECRET", VALUE)
    set_secret(monkeypatch, "SHIPSTATION_API_KEY", "ss-key-value")
    before = stored_rows(ledger_url)
    new_key = Fernet.generate_key().decode()
    key_file = tmp_path / "new.key"
    key_file.write_text(new_key + "\n")

    code, out, err = shipnav(monkeypatch, capsys, "secrets", "rotate-key", "--new-key-file", str(key_file))
    assert code == 0, err
    assert "re-encrypted 2 stored secret(s)" in out and "Now set SHIPNAV_SECRET_KEY to the new key" in out
    assert new_key not in out and key not in out and VALUE not in out
    after = stored_rows(ledger_url)
    assert all(after[n]["ciphertext"] != before[n]["ciphertext"] for n in before)

    with pytest.raises(SettingsError, match="cannot decrypt the stored NAV_CLIENT_SECRET"):
        load_settings()
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", new_key)
    settings = load_settings()
    assert settings.nav_client_secret.get_secret_value() == VALUE  # type: ignore[union-attr]
    assert settings.shipstation_api_key.get_secret_value() == "ss-key-value"  # type: ignore[union-attr]

    # Again, the new key on stdin this time.
    third = Fernet.generate_key().decode()
    code, _, err = shipnav(monkeypatch, capsys, "secrets", "rotate-key", stdin=third + "\n")
    assert code == 0, err
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", third)
    assert load_settings().nav_client_secret.get_secret_value() == VALUE  # type: ignore[union-attr]


def test_rotate_key_is_all_or_nothing(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secret(monkeypatch, "NAV_CLIENT_SECRET", VALUE)
    # NAV_PASSWORD under another key: rotation reaches it after NAV_CLIENT_SECRET and must undo.
    stray = Fernet(Fernet.generate_key())
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        now = sa.func.current_timestamp()
        conn.execute(
            sa.insert(t.secrets).values(
                name="NAV_PASSWORD",
                ciphertext=store.encrypt("NAV_PASSWORD", "x-1234", stray),
                created_at=now,
                updated_at=now,
            )
        )
    engine.dispose()
    before = stored_rows(ledger_url)
    new_key = Fernet.generate_key().decode()
    code, out, err = shipnav(monkeypatch, capsys, "secrets", "rotate-key", stdin=new_key)
    assert code == 1 and "cannot decrypt the stored NAV_PASSWORD" in err and "re-encrypted" not in out
    assert stored_rows(ledger_url) == before


@pytest.mark.parametrize(
    ("env_key", "new_key", "message"),
    [
        (None, "NEW", "SHIPNAV_SECRET_KEY is not set"),
        ("OLD", "", "no new key given"),
        ("OLD", "OLD", "nothing to rotate"),
        ("OLD", "not-a-key", "the new key is not a valid Fernet key"),
    ],
)
def test_rotate_key_refusals(
    ledger_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env_key: str | None,
    new_key: str,
    message: str,
) -> None:
    keys = {"OLD": Fernet.generate_key().decode(), "NEW": Fernet.generate_key().decode()}
    if env_key:
        monkeypatch.setenv("SHIPNAV_SECRET_KEY", keys[env_key])
    code, _, err = shipnav(monkeypatch, capsys, "secrets", "rotate-key", stdin=keys.get(new_key, new_key))
    assert code in (1, 2) and message in err
    assert "not-a-key" not in err and keys["OLD"] not in err


# --------------------------------------------------------------------------------------------
# The cost of looking
# --------------------------------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """SQL statements the secret store runs, recorded."""
    seen: list[str] = []
    real = store._engine

    def counting(url: str) -> sa.Engine:
        engine = real(url)
        sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
        return engine

    monkeypatch.setattr(store, "_engine", counting)
    return seen


def test_no_ledger_yet_means_no_query_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    settings = load_settings()
    assert settings.nav_client_secret is None and statements == []
    assert not (tmp_path / "home").exists()


def test_one_query_when_the_store_is_empty_and_none_when_the_environment_sets_all(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    store.SecretStore(sa.create_engine(ledger_url)).ensure_table()
    load_settings()
    assert len(statements) == 1 and "shipnav_secrets" in statements[0]
    statements.clear()
    for name in store.STORABLE:
        monkeypatch.setenv(name, f"env-{name}")
    load_settings()
    assert statements == []


def test_a_ledger_without_the_table_means_nothing_stored(
    ledger_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table other (x integer)"))
    engine.dispose()
    assert load_settings().nav_password is None


def test_an_unreachable_ledger_does_not_break_settings_but_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    # Port 1 on loopback: refused at once.
    monkeypatch.setenv("SHIPNAV_DATABASE_URL", "postgresql+psycopg2://shipnav:db-pw-5678@127.0.0.1:1/ledger")
    settings = load_settings()
    with pytest.raises(SettingsError) as err:
        settings.require()
    message = str(err.value)
    assert "the secrets stored in the ledger could not be read (OperationalError" in message
    assert "db-pw-5678" not in message


# --------------------------------------------------------------------------------------------
# PostgreSQL ledger
# --------------------------------------------------------------------------------------------


def test_secrets_on_a_postgres_ledger(
    pg_schema_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHIPNAV_DATABASE_URL", pg_schema_url)
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", Fernet.generate_key().decode())
    assert load_settings().nav_password is None  # no table yet: nothing stored
    for value in ("first-pw-1234", "second-pw-5678"):  # the second is an upsert on PostgreSQL
        assert shipnav(monkeypatch, capsys, "secrets", "set", "NAV_PASSWORD", stdin=value)[0] == 0
    assert shipnav(monkeypatch, capsys, "secrets", "set", "NAV_CLIENT_SECRET", stdin=VALUE)[0] == 0
    assert load_settings().nav_password.get_secret_value() == "second-pw-5678"  # type: ignore[union-attr]
    new_key = Fernet.generate_key().decode()
    assert shipnav(monkeypatch, capsys, "secrets", "rotate-key", stdin=new_key)[0] == 0
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", new_key)
    assert load_settings().nav_client_secret.get_secret_value() == VALUE  # type: ignore[union-attr]
    code, out, _ = shipnav(monkeypatch, capsys, "secrets", "list")
    assert code == 0 and "NAV_PASSWORD" in out and "second-pw-5678" not in out


# --------------------------------------------------------------------------------------------
# A sync whose NAV client secret comes from the store
# --------------------------------------------------------------------------------------------


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with sqlite_instance() as inst:
        yield inst


def test_sync_with_a_stored_nav_client_secret(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    empty_world.nav.client_secret = "stored-only-NAVSECRET-31c"
    sc.install_shipping_agents(empty_world)
    _order, header, label = order_with_label(empty_world, "SECRETS-1001")
    monkeypatch.chdir(tmp_path)
    with harness_for(monkeypatch, sandbox, empty_world, instance, sqlite_ledger_url(tmp_path)) as harness:
        monkeypatch.setenv("SHIPNAV_SECRET_KEY", Fernet.generate_key().decode())
        set_secret(monkeypatch, "NAV_CLIENT_SECRET", empty_world.nav.client_secret)
        monkeypatch.delenv("NAV_CLIENT_SECRET")
        assert load_settings().nav_client_secret.get_secret_value() == "stored-only-NAVSECRET-31c"  # type: ignore[union-attr]

        run = harness.run()
        assert_written(run, label, header["No"], tier=1)
        assert run.nav_count("POST", "/oauth2/") >= 1  # the token came from the stored secret
