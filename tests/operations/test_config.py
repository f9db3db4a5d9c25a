"""vault.config: one place, typed values, and errors that name the key."""

from __future__ import annotations

import base64
import os
from dataclasses import fields
from pathlib import Path

import pytest

from tests.operations.test_config_doc import TEST_VARIABLES
from vault.config import (
    CLIENT_VARIABLES,
    TOOL_PREFIX,
    ClientConfig,
    Config,
    default_sql_dir,
    load_client_config,
    load_config,
    require_database_url,
    require_master_key,
)
from vault.errors import ConfigError

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()


def test_defaults() -> None:
    config = load_config({})
    assert config.database_url is None
    assert config.master_key is None
    assert config.dev is False
    assert config.authority_listen == "127.0.0.1:8201"
    assert config.store_url == "http://127.0.0.1:8202"
    assert (config.login_discharge_ttl, config.org_discharge_ttl) == (600, 300)
    assert config.sql_dir == default_sql_dir()
    assert (config.sql_dir / "store").is_dir()


def test_environment_values_are_parsed() -> None:
    config = load_config(
        {
            "CVAULT_DATABASE_URL": "postgresql://u@db/cvault",
            "CVAULT_MASTER_KEY": KEY_B64,
            "CVAULT_SESSION_TTL": "3600",
            "CVAULT_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7",
            "CVAULT_LOG_LEVEL": "debug",
            "CVAULT_AUTHORITY_URL": "https://auth.example/",
            "CVAULT_DATA_DIR": "/tmp/x",
        }
    )
    assert config.database_url == "postgresql://u@db/cvault"
    assert config.master_key == KEY
    assert config.session_ttl == 3600
    assert config.trusted_proxies == ("10.0.0.0/8", "192.168.1.7/32")
    assert config.log_level == "DEBUG"
    assert config.authority_url == "https://auth.example"
    assert config.data_dir == Path("/tmp/x")


def test_client_and_test_variables_are_not_typos() -> None:
    env = dict.fromkeys([*CLIENT_VARIABLES, *TEST_VARIABLES, "CVAULT_TEST_SOMETHING_NEW"], "x")
    env.pop("CVAULT_CONFIG")
    load_config(env)


def test_no_setting_takes_the_prefix_left_to_tools() -> None:
    assert [f.name for f in fields(Config) if f"CVAULT_{f.name.upper()}".startswith(TOOL_PREFIX)] == []


def test_a_client_reads_only_where_the_services_are(tmp_path: Path) -> None:
    # The services' settings in the same shell, even broken ones, are not the client's business.
    env = {
        "CVAULT_STORE_URL": "https://store.example/",
        "CVAULT_MASTER_KEY_FILE": "missing.key",
        "CVAULT_DATABASE_URL": "not a url",
        "CVAULT_TLS_CERT_FILE": "cert.pem",
    }
    assert load_client_config(env) == ClientConfig(store_url="https://store.example")
    assert [f.name for f in fields(ClientConfig)] == ["authority_url", "store_url"]
    assert ClientConfig() == ClientConfig(Config.authority_url, Config.store_url)
    toml = tmp_path / "client.toml"
    toml.write_text('authority_url = "https://auth.example"\nstore_url = "https://s.example"\ndatabase_url = 1\n')
    # The TOML file's URLs win over the variables' (the client's order since it had one).
    assert load_client_config({**env, "CVAULT_CONFIG": str(toml)}) == ClientConfig(
        "https://auth.example", "https://s.example"
    )
    with pytest.raises(ConfigError, match="CVAULT_AUTHORITY_URL"):
        load_client_config({"CVAULT_AUTHORITY_URL": "ftp://auth"})


def test_unknown_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="CVAULT_DATABSE_URL"):
        load_config({"CVAULT_DATABSE_URL": "postgresql://db/x"})


def test_dev_mode_cannot_come_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="CVAULT_DEV"):
        load_config({"CVAULT_DEV": "1"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CVAULT_SESSION_TTL", "soon"),
        ("CVAULT_SESSION_TTL", "-5"),
        ("CVAULT_STORE_LISTEN", "8202"),
        ("CVAULT_STORE_URL", "ftp://x"),
        ("CVAULT_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("CVAULT_LOG_LEVEL", "loud"),
        ("CVAULT_DATABASE_URL", "mysql://db"),
        ("CVAULT_MASTER_KEY", "not base64!"),
        ("CVAULT_MASTER_KEY", base64.b64encode(b"short").decode()),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


def test_empty_variable_counts_as_unset() -> None:
    assert load_config({"CVAULT_MASTER_KEY": ""}).master_key is None


def test_master_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(KEY_B64 + "\n")
    assert load_config({"CVAULT_MASTER_KEY_FILE": str(path)}).master_key == KEY
    path.write_text("garbage")
    with pytest.raises(ConfigError, match="CVAULT_MASTER_KEY_FILE"):
        load_config({"CVAULT_MASTER_KEY_FILE": str(path)})
    with pytest.raises(ConfigError, match="CVAULT_MASTER_KEY_FILE"):
        load_config({"CVAULT_MASTER_KEY_FILE": str(tmp_path / "missing")})


def test_master_key_from_two_places_is_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(KEY_B64)
    with pytest.raises(ConfigError, match="not both"):
        load_config({"CVAULT_MASTER_KEY": KEY_B64, "CVAULT_MASTER_KEY_FILE": str(path)})


def test_secrets_stay_out_of_the_repr() -> None:
    config = load_config({"CVAULT_MASTER_KEY": KEY_B64, "CVAULT_DATABASE_URL": "postgresql://u:hunter2@db/x"})
    text = repr(config)
    assert KEY_B64 not in text and repr(KEY) not in text
    assert "hunter2" not in text


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "cvault.toml"
    path.write_text('store_listen = "0.0.0.0:9000"\nsession_ttl = 60\ntrusted_proxies = ["10.1.0.0/16"]\n')
    config = load_config({}, path)
    assert config.store_listen == "0.0.0.0:9000"
    assert config.session_ttl == 60
    assert config.trusted_proxies == ("10.1.0.0/16",)
    # The environment wins over the file, command-line overrides over both.
    assert load_config({"CVAULT_SESSION_TTL": "90"}, path).session_ttl == 90
    assert load_config({"CVAULT_SESSION_TTL": "90"}, path, session_ttl=120).session_ttl == 120
    assert load_config({"CVAULT_CONFIG": str(path)}).session_ttl == 60


def test_unknown_toml_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cvault.toml"
    path.write_text("sesion_ttl = 60\n")
    with pytest.raises(ConfigError, match="sesion_ttl"):
        load_config({}, path)


def test_master_key_is_not_accepted_inline_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "cvault.toml"
    path.write_text(f'master_key = "{KEY_B64}"\n')
    with pytest.raises(ConfigError, match="master_key"):
        load_config({}, path)


def test_bad_toml_value_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "cvault.toml"
    path.write_text('session_ttl = "long"\n')
    with pytest.raises(ConfigError, match=r"session_ttl \(in .*cvault.toml\)"):
        load_config({}, path)


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="colour"):
        load_config({}, None, colour="blue")


def test_required_settings_name_their_variables() -> None:
    config = load_config({})
    with pytest.raises(ConfigError, match="CVAULT_MASTER_KEY"):
        require_master_key(config)
    with pytest.raises(ConfigError, match="CVAULT_DATABASE_URL"):
        require_database_url(config)


def test_loads_the_real_environment() -> None:
    # Whatever CI exports (CVAULT_TEST_DATABASE_URL, CVAULT_TEST_REQUIRE_VECTORS) must not trip the check.
    load_config(os.environ)


def test_database_timeouts_default_and_parse() -> None:
    config = load_config({})
    assert config.database_timeout == 3.0
    assert config.readiness_timeout == 2.0
    config = load_config({"CVAULT_DATABASE_TIMEOUT": "1.5", "CVAULT_READINESS_TIMEOUT": "1"})
    assert (config.database_timeout, config.readiness_timeout) == (1.5, 1.0)
    for bad in ("0", "-1", "nan", "soon", "7200"):
        with pytest.raises(ConfigError, match="CVAULT_DATABASE_TIMEOUT"):
            load_config({"CVAULT_DATABASE_TIMEOUT": bad})
