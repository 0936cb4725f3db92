"""Settings: flags > environment > config file > defaults, each value validated, the key masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_settings, mask_secret
from pipeline.errors import ConfigError


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('base_url = "http://config-host:8080/v1"\nmodel = "config-model"\nconcurrency = 3\n')
    return path


def test_precedence_flag_over_env_over_config_over_default(config_file: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://env-host:8000/v1/", "BRIEF_MODEL": "env-model"}
    settings = load_settings({"model": "flag-model"}, env, config_file)
    assert settings.model == "flag-model"
    assert settings.base_url == "http://env-host:8000/v1" and settings.base_url_origin == "env"
    assert settings.concurrency == 3  # only the config file says
    assert settings.max_attempts == 5  # nobody says: default
    from_config = load_settings({}, {}, config_file)
    assert from_config.base_url == "http://config-host:8080/v1" and from_config.base_url_origin == "config"


def test_legacy_openai_api_base_is_honoured(tmp_path: Path) -> None:
    settings = load_settings({}, {"OPENAI_API_BASE": "http://legacy:1234/v1"}, tmp_path / "none.toml")
    assert settings.base_url == "http://legacy:1234/v1"
    both = {"OPENAI_API_BASE": "http://legacy:1234/v1", "OPENAI_BASE_URL": "http://new:1/v1"}
    assert load_settings({}, both, tmp_path / "none.toml").base_url == "http://new:1/v1"


def test_no_key_is_fine_for_local_servers_and_never_shown(tmp_path: Path) -> None:
    settings = load_settings({}, {"OPENAI_API_KEY": ""}, tmp_path / "none.toml")
    assert settings.api_key is None and settings.masked_key == "(none)"
    keyed = load_settings({}, {"OPENAI_API_KEY": "sk-abcdefghijklmnop"}, tmp_path / "none.toml")
    assert keyed.masked_key == "sk-…op" and "abcdefghijklmnop" not in repr(keyed)
    assert mask_secret("short") == "****"


@pytest.mark.parametrize(
    ("flags", "env", "names"),
    [
        ({"concurrency": "0"}, {}, "concurrency"),
        ({}, {"BRIEF_TIMEOUT": "soon"}, "timeout"),
        ({"json_mode": "xml"}, {}, "json_mode"),
        ({"base_url": "ftp://host"}, {}, "base_url"),
        ({"max_chunk_tokens": "10"}, {}, "max_chunk_tokens"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, flags: dict, env: dict, names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        load_settings(flags, env, tmp_path / "none.toml")


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="bad.toml: unknown setting"):
        load_settings({}, {}, bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("base_url = \n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_settings({}, {}, broken)


def test_cache_location(tmp_path: Path) -> None:
    default = load_settings({}, {}, tmp_path / "none.toml")
    assert default.cache_dir is not None and default.cache_dir.name == "brief"
    assert load_settings({"cache_dir": str(tmp_path / "c")}, {}, tmp_path / "none.toml").cache_dir == tmp_path / "c"
    assert load_settings({}, {"BRIEF_CACHE_DIR": "/x"}, tmp_path / "none.toml", no_cache=True).cache_dir is None
