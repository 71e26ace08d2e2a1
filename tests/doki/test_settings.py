"""Settings: the guide's variable names, development's zero config, and production's refusal to run unsafe."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from doki.app import create_app
from doki.origins import origin_problem
from doki.settings import (
    ConfigError,
    Settings,
    load_settings,
    problems_of,
    read_settings,
    with_development_defaults,
)
from tests.helpers import secret

GOOD_KEY = secret("a Fernet key", Fernet.generate_key().decode())
OLD_KEY = secret("the old Fernet key", Fernet.generate_key().decode())


def production(**overrides: Any) -> Settings:
    """Production settings with every value good, unless overridden (None removes a value)."""
    values: dict[str, Any] = {
        "environment": "production",
        "allowed_origins": "https://app.doki.com,https://www.doki.com",
        "session_secret_key": "k" * 16 + "Zq8vN2mP4rT6wY1uX3sA5dF7",
        "encryption_key": GOOD_KEY,
        "supabase_url": "https://abc.supabase.co",
        "supabase_secret_key": "sb_secret_live_0123456789",
        "google_client_id": "1234-abc.apps.googleusercontent.com",
        "google_client_secret": "GOCSPX-real",
        "google_redirect_uri": "https://api.doki.com/connectors/google/callback",
        "gcp_project_id": "doki-prod",
    }
    values.update(overrides)
    return Settings(_env_file=None, **{k: v for k, v in values.items() if v is not None})


def test_good_production_settings_have_no_problems() -> None:
    assert production().problems() == []


def test_the_guides_name_variables_are_accepted_as_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLIENT_ID_NAME", "id-from-guide")
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET_NAME", "secret-from-guide")
    monkeypatch.setenv("SESSION_SECRET_KEY_NAME", "session-from-guide")
    monkeypatch.setenv("SUPABASE_SECRET_KEY_NAME", "supabase-from-guide")
    monkeypatch.setenv("SUPABASE_JWT_SECRET_NAME", "jwt-from-guide")
    monkeypatch.setenv("ENCRYPTION_KEY_NAME", GOOD_KEY)
    settings = Settings(_env_file=None)
    assert settings.google_client_id is not None
    assert settings.google_client_id.get_secret_value() == "id-from-guide"
    assert settings.google_client_secret is not None
    assert settings.google_client_secret.get_secret_value() == "secret-from-guide"
    assert settings.session_secret_key is not None
    assert settings.session_secret_key.get_secret_value() == "session-from-guide"
    assert settings.supabase_secret_key is not None
    assert settings.supabase_secret_key.get_secret_value() == "supabase-from-guide"
    assert settings.supabase_jwt_secret is not None
    assert settings.supabase_jwt_secret.get_secret_value() == "jwt-from-guide"
    assert settings.encryption_keys == [GOOD_KEY]


def test_the_clean_name_wins_over_the_guides_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLIENT_ID", "clean")
    monkeypatch.setenv("GOOGLE_CLIENT_ID_NAME", "legacy")
    settings = Settings(_env_file=None)
    assert settings.google_client_id is not None
    assert settings.google_client_id.get_secret_value() == "clean"


def test_settings_are_read_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=9001\nALLOWED_ORIGINS=http://a.test:3000, http://b.test\n")
    settings = Settings()
    assert settings.port == 9001
    assert settings.allowed_origins == ["http://a.test:3000", "http://b.test"]


def test_secrets_never_show_in_the_settings_repr() -> None:
    settings = production()
    assert "sb_secret_live" not in repr(settings)
    assert GOOD_KEY not in repr(settings)
    assert "GOCSPX" not in str(settings)


def test_several_encryption_keys_are_read_newest_first() -> None:
    assert production(encryption_key=f"{GOOD_KEY}, {OLD_KEY}").encryption_keys == [GOOD_KEY, OLD_KEY]


@pytest.mark.parametrize(
    ("name", "field", "where"),
    [
        ("SESSION_SECRET_KEY", "session_secret_key", " (put it in Secret Manager)"),
        ("ENCRYPTION_KEY", "encryption_key", " (put it in Secret Manager)"),
        ("SUPABASE_URL", "supabase_url", ""),  # a plain setting, not a secret
        ("SUPABASE_SECRET_KEY", "supabase_secret_key", " (put it in Secret Manager)"),
        ("GOOGLE_CLIENT_ID", "google_client_id", ""),
        ("GOOGLE_CLIENT_SECRET", "google_client_secret", " (put it in Secret Manager)"),
    ],
)
def test_production_refuses_a_missing_required_setting_saying_where_secrets_go(
    name: str, field: str, where: str
) -> None:
    problems = production(**{field: None}).problems()
    assert f"{name} is not set: production needs it{where}" in problems


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session_secret_key", "dev-secret-key"),
        ("supabase_secret_key", "your-secret-key"),
        ("google_client_id", "your-client-id"),
        ("google_client_secret", "changethis"),
        ("session_secret_key", "doki-dev-abcdefghijklmnopqrstuvwxyz0123456789"),
        ("google_client_secret", "xxxx-xxxx"),
        ("supabase_secret_key", "XXX"),
    ],
)
def test_production_refuses_development_placeholders(field: str, value: str) -> None:
    problems = production(**{field: value}).problems()
    assert any(field.upper() in p and "development placeholder" in p for p in problems), problems


def test_a_random_key_that_happens_to_contain_xxx_is_not_a_placeholder() -> None:
    key = next(k for k in iter(lambda: Fernet.generate_key().decode(), None) if "xxx" in k.lower())  # ~1 in 800
    assert production(encryption_key=key).problems() == []


def test_production_refuses_a_short_session_secret() -> None:
    problems = production(session_secret_key="short-but-real-1").problems()
    assert problems == ["SESSION_SECRET_KEY is 16 characters: use at least 32 (`doki keys generate` makes one)"]


def test_a_session_secret_of_commas_alone_is_refused_rather_than_signing_with_nothing() -> None:
    problems = production(session_secret_key=" , ").problems()
    assert "SESSION_SECRET_KEY holds no secret, only commas or spaces: `doki keys generate` makes one" in problems


def test_a_session_secret_list_is_checked_key_by_key_and_read_newest_first() -> None:
    settings = production(session_secret_key=f"{'n' * 40}, short-but-real-1")
    assert settings.session_secret_keys == ["n" * 40, "short-but-real-1"]
    assert settings.problems() == [
        "SESSION_SECRET_KEY key #2 is 16 characters: use at least 32 (`doki keys generate` makes one)"
    ]


@pytest.mark.parametrize("origins", ["*", "https://app.doki.com,*"])
def test_production_refuses_a_wildcard_origin(origins: str) -> None:
    problems = production(allowed_origins=origins).problems()
    assert any(p.startswith("ALLOWED_ORIGINS contains '*'") for p in problems)


def test_production_refuses_empty_allowed_origins() -> None:
    problems = production(allowed_origins="").problems()
    assert problems == ["ALLOWED_ORIGINS is empty: list your frontend origins, e.g. https://app.example.com"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.doki.com/",
        "https://app.doki.com/path",
        "app.doki.com",
        "ftp://app.doki.com",
        "https://app.doki.com:99999",
        "https://user:pw@app.doki.com",
        "https://app.doki.com?x=1",
        "https://",
    ],
)
def test_a_malformed_origin_is_a_problem(origin: str) -> None:
    assert origin_problem(origin) is not None
    assert any(origin in p for p in production(allowed_origins=origin).problems())


@pytest.mark.parametrize(
    "origin", ["https://app.doki.com", "http://localhost:3000", "http://127.0.0.1:5173", "https://[::1]:8443"]
)
def test_a_well_formed_origin_is_accepted(origin: str) -> None:
    assert origin_problem(origin) is None


def test_an_invalid_fernet_key_is_named_by_position() -> None:
    problems = production(encryption_key=f"{GOOD_KEY},not-a-fernet-key").problems()
    assert problems == [
        "ENCRYPTION_KEY key #2 is not a valid Fernet key: it is 16 characters long: a key is 44, the last one its "
        "only '='; `doki keys generate` makes one"
    ]


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://api.doki.com/connectors/google/callback", True),
        ("http://api.doki.com/connectors/google/callback", False),
        ("http://127.0.0.1:8080/connectors/google/callback", True),
        ("http://localhost:8080/connectors/google/callback", True),
        ("http://[::1]:8080/cb", True),
        ("http://127.0.0.1.evil.com/cb", False),
    ],
)
def test_production_needs_an_https_redirect_uri_except_on_loopback(uri: str, ok: bool) -> None:
    problems = production(google_redirect_uri=uri).problems()
    assert (problems == []) is ok, problems


def test_production_refuses_the_local_sqlite_credential_store() -> None:
    problems = production(credential_store="sqlite").problems()
    assert len(problems) == 1
    assert problems[0].startswith("the credential store is the local SQLite file, and Cloud Run disks are ephemeral")


def test_production_lists_every_problem_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ENVIRONMENT": "production",
        "ALLOWED_ORIGINS": "*",
        "ENCRYPTION_KEY": "nope",
        "SUPABASE_URL": "https://abc.supabase.co",
        "SUPABASE_SECRET_KEY": "sb_secret_live_0123456789",
        "GOOGLE_CLIENT_ID": "1234-abc.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "GOCSPX-real",
        "GOOGLE_REDIRECT_URI": "http://api.doki.com/cb",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert [p.split(" ", 1)[0] for p in caught.value.problems] == [
        "ALLOWED_ORIGINS",
        "ENCRYPTION_KEY",
        "SESSION_SECRET_KEY",
        "GOOGLE_REDIRECT_URI",
    ]
    assert caught.value.render().startswith("Doki cannot start: 4 configuration problem(s)\n  - ALLOWED_ORIGINS")


def test_development_needs_nothing_and_keeps_generated_keys_in_the_state_dir(tmp_path: Path) -> None:
    first = load_settings()
    keys_file = tmp_path / ".doki" / "dev-keys.json"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert first.store_kind == "sqlite"
    assert first.allowed_origins == [
        "http://localhost:3000",
        "http://localhost:3001",
        "http://127.0.0.1:3000",
        "http://localhost:5173",
    ]
    second = load_settings()
    assert first.encryption_keys == second.encryption_keys
    assert first.session_secret_key == second.session_secret_key
    stored = json.loads(keys_file.read_text())
    assert first.encryption_keys == [stored["encryption_key"]]


def test_development_keeps_keys_it_was_given(tmp_path: Path) -> None:
    settings = with_development_defaults(Settings(_env_file=None, encryption_key=GOOD_KEY, session_secret_key="s" * 40))
    assert settings.encryption_keys == [GOOD_KEY]
    assert not (tmp_path / ".doki").exists()


def test_a_corrupt_dev_keys_file_is_an_error_not_silently_replaced(tmp_path: Path) -> None:
    (tmp_path / ".doki").mkdir()
    (tmp_path / ".doki" / "dev-keys.json").write_text("{not json")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "dev-keys.json is unreadable" in caught.value.problems[0]
    assert "delete it to start over with new keys" in caught.value.problems[0]
    assert (tmp_path / ".doki" / "dev-keys.json").read_text() == "{not json"


def test_the_store_is_supabase_once_its_url_and_key_are_set() -> None:
    assert production().store_kind == "supabase"
    assert production(supabase_secret_key=None).store_kind == "sqlite"


def test_choosing_the_supabase_store_without_its_settings_is_a_problem() -> None:
    settings = Settings(_env_file=None, credential_store="supabase", encryption_key=GOOD_KEY)
    assert settings.problems() == [
        "CREDENTIAL_STORE=supabase needs SUPABASE_URL and SUPABASE_SECRET_KEY (the service role key)"
    ]


def test_jwt_algorithms_are_limited_to_the_asymmetric_ones_supabase_uses() -> None:
    problems = production(supabase_jwt_algorithms="ES256,none,HS256").problems()
    assert problems == [
        "SUPABASE_JWT_ALGORITHMS has none, HS256: allowed are ES256, RS256 "
        "(HS256 is enabled by setting SUPABASE_JWT_SECRET)"
    ]


def test_a_short_legacy_jwt_secret_is_a_problem_before_anything_starts() -> None:
    problems = production(supabase_jwt_secret="short-secret").problems()
    assert problems == [
        "SUPABASE_JWT_SECRET is shorter than 32 bytes: copy the project's JWT secret from Supabase "
        "(Settings > API), or unset it to verify with the project's signing keys only"
    ]


def test_an_unwritable_state_dir_is_a_configuration_problem_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A path below a regular file cannot be created, even by root (CI runs as root).
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DOKI_STATE_DIR", str(tmp_path / "a-file" / "state"))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == [
        f"cannot keep development keys in {tmp_path / 'a-file' / 'state'}/ (Not a directory): "
        "set DOKI_STATE_DIR to a writable directory, or set ENCRYPTION_KEY and SESSION_SECRET_KEY"
    ]


def test_values_of_the_wrong_kind_are_a_config_error_naming_each_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path("/"))  # no .env of the developer's
    for name, value in {"ENVIRONMENT": "prod", "PORT": "eighty", "CREDENTIAL_STORE": "bogus"}.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as failed:
        read_settings()

    assert failed.value.problems == [
        "ENVIRONMENT: input should be 'development' or 'production'",
        "PORT: input should be a valid integer, unable to parse string as an integer",
        "CREDENTIAL_STORE: input should be 'auto', 'sqlite' or 'supabase'",
    ]


def test_a_port_out_of_range_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path("/"))
    with pytest.raises(ConfigError) as failed:
        read_settings(port=0)
    assert failed.value.problems == ["PORT: input should be greater than or equal to 1"]


def test_an_unknown_log_level_is_a_problem_listing_the_levels() -> None:
    assert production(log_level="LOUD").problems() == [
        "LOG_LEVEL 'LOUD' is not a level: use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ]
    assert production(log_level="debug").problems() == []


SECRET_NAMES = {"SESSION_SECRET_KEY", "ENCRYPTION_KEY", "SUPABASE_SECRET_KEY", "GOOGLE_CLIENT_SECRET"}
PLAIN_PRODUCTION = {
    "ENVIRONMENT": "production",
    "SUPABASE_URL": "https://abc.supabase.co",
    "ALLOWED_ORIGINS": "https://app.doki.com",
    "GOOGLE_CLIENT_ID": "1234-abc.apps.googleusercontent.com",
}


def test_problems_of_judges_the_values_given_alone_not_the_environment_nor_dot_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # doki deploy judges doki.toml with it: a developer's .env or a CI variable never reaches Cloud Run.
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LOG_LEVEL=verbose\nFRONTEND_URL=http://localhost:3000/done\n")
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SUPABASE_URL", "https://your-project.supabase.co")

    assert problems_of({}) == []
    assert problems_of(PLAIN_PRODUCTION, elsewhere=SECRET_NAMES) == []
    assert problems_of({**PLAIN_PRODUCTION, "LOG_LEVEL": "verbose"}, elsewhere=SECRET_NAMES) == [
        "LOG_LEVEL 'verbose' is not a level: use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ]


def test_problems_of_counts_values_kept_elsewhere_as_set_and_leaves_their_checks_to_where_they_live() -> None:
    plain = {k: v for k, v in PLAIN_PRODUCTION.items() if k != "SUPABASE_URL"}

    kept_elsewhere = problems_of({**plain, "ALLOWED_ORIGINS": "*"}, elsewhere={*SECRET_NAMES, "SUPABASE_URL"})
    missing = problems_of(plain, elsewhere=SECRET_NAMES - {"ENCRYPTION_KEY"})

    assert kept_elsewhere == [
        "ALLOWED_ORIGINS contains '*': with credentials on, browsers need exact origins; list them, e.g. "
        "https://app.example.com"
    ]
    assert missing == [
        "ENCRYPTION_KEY is not set: production needs it (put it in Secret Manager)",
        "SUPABASE_URL is not set: production needs it",
    ]


# Carrying connections over from the original backend


def test_the_original_table_is_not_read_unless_named() -> None:
    settings = production()
    assert settings.legacy_credentials_table is None
    assert settings.problems() == []


def test_the_original_key_defaults_to_the_encryption_keys_the_originals_variable_already_feeds() -> None:
    settings = production(encryption_key=f"{GOOD_KEY},{OLD_KEY}", legacy_credentials_table="credentials")
    assert settings.legacy_encryption_keys == [GOOD_KEY, OLD_KEY]
    assert settings.problems() == []


def test_the_original_keys_can_be_given_apart_from_the_encryption_keys() -> None:
    settings = production(legacy_credentials_table="credentials", legacy_encryption_key=f" {OLD_KEY} ,{GOOD_KEY}")
    assert settings.legacy_encryption_keys == [OLD_KEY, GOOD_KEY]
    assert settings.encryption_keys == [GOOD_KEY]
    assert settings.problems() == []


def test_reading_the_original_table_needs_the_supabase_project_it_lives_in() -> None:
    settings = Settings(_env_file=None, legacy_credentials_table="credentials", supabase_url="https://abc.supabase.co")
    assert settings.problems() == [
        "LEGACY_CREDENTIALS_TABLE needs SUPABASE_URL and SUPABASE_SECRET_KEY: the original's table is read in that "
        "Supabase project with its secret (service role) key"
    ]


@pytest.mark.parametrize("table", ["public.credentials", "credentials;drop", "1credentials", "c" * 64, "crédits"])
def test_an_original_table_that_is_not_a_table_name_is_a_problem(table: str) -> None:
    (problem,) = production(legacy_credentials_table=table).problems()
    assert problem.startswith("LEGACY_CREDENTIALS_TABLE ")
    assert "is not a table name: use the original backend's table, credentials" in problem


def test_the_original_table_cannot_be_dokis_own() -> None:
    (problem,) = production(legacy_credentials_table="doki_credentials").problems()
    assert problem.startswith("LEGACY_CREDENTIALS_TABLE and CREDENTIALS_TABLE are both 'doki_credentials'")


def test_a_bad_original_key_is_named_by_position_never_shown() -> None:
    bad = secret("a malformed legacy key", GOOD_KEY[:-2] + "+=")
    (problem,) = production(legacy_credentials_table="credentials", legacy_encryption_key=f"{OLD_KEY},{bad}").problems()
    assert problem.startswith("LEGACY_ENCRYPTION_KEY key #2 is not a valid Fernet key: it is standard base64")
    assert "the original backend's ENCRYPTION_KEY_NAME value" in problem
    assert bad not in problem


def test_an_original_key_without_the_original_table_is_a_problem_not_silently_ignored() -> None:
    (problem,) = production(legacy_encryption_key=OLD_KEY).problems()
    assert problem.startswith("LEGACY_ENCRYPTION_KEY is set but LEGACY_CREDENTIALS_TABLE is not")


def test_the_app_refuses_to_start_on_a_bad_original_table() -> None:
    with pytest.raises(ConfigError, match="LEGACY_CREDENTIALS_TABLE"):
        create_app(production(legacy_credentials_table="no such table"))
