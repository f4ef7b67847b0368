"""Configuration: file, environment overrides, and errors that name the key."""

import pytest

from ingest_server.config import ConfigError, load_settings, replace


def write(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults_and_shipped_config_load():
    s = load_settings("config.toml", env={})
    assert s.server.port == 8080
    assert s.storage.backend == "local"
    assert s.auth.open_token_endpoint is False
    assert s.limits.max_upload_bytes == 2 * 1024**3


def test_env_overrides_file(tmp_path):
    p = write(tmp_path, "[server]\nport = 9000\n")
    s = load_settings(p, env={"INGEST_SERVER_PORT": "9100", "INGEST_AUTH_OPEN_TOKEN_ENDPOINT": "yes",
                              "INGEST_LIMITS_ZIP_MAX_RATIO": "50.5", "INGEST_TEST_DSN": "ignored"})
    assert s.server.port == 9100
    assert s.auth.open_token_endpoint is True
    assert s.limits.zip_max_ratio == 50.5


def test_storage_layout_and_time_zone(tmp_path):
    s = load_settings(None, env={})
    assert (s.storage.layout, s.storage.timezone) == ("native", "UTC")  # the default
    s = load_settings(None, env={"INGEST_STORAGE_LAYOUT": "cqube",
                                 "INGEST_STORAGE_TIMEZONE": "Asia/Kolkata"})
    assert (s.storage.layout, s.storage.timezone) == ("cqube", "Asia/Kolkata")


def test_relative_paths_resolve_next_to_the_file(tmp_path):
    p = write(tmp_path, '[storage]\nroot = "store"\n')
    s = load_settings(p, env={})
    assert s.path(s.storage.root) == tmp_path / "store"


@pytest.mark.parametrize("text, env, names", [
    ("[server]\nprot = 1\n", {}, "prot"),
    ("[serverr]\nport = 1\n", {}, "serverr"),
    ("[server]\nport = 'x'\n", {}, "server.port"),
    ("[server]\nport = 70000\n", {}, "server.port"),
    ("", {"INGEST_SERVER_PORT": "eighty"}, "server.port"),
    ("", {"INGEST_SERVER_NOPE": "1"}, "nope"),
    ("", {"INGEST_AUTH_OPEN_TOKEN_ENDPOINT": "maybe"}, "auth.open_token_endpoint"),
    ("[storage]\nbackend = 'ftp'\n", {}, "storage.backend"),
    ("[storage]\nlayout = 'minio'\n", {}, "storage.layout"),
    ("", {"INGEST_STORAGE_TIMEZONE": "Mars/Olympus"}, "storage.timezone"),
    ("[auth]\njwt_secret = 'short'\n", {}, "auth.jwt_secret"),
    ("[auth]\nalgorithm = 'none'\n", {}, "auth.algorithm"),
    ("[auth]\nalgorithm = 'RS256'\n", {}, "auth.private_key_file"),
    ("[[auth.clients]]\nid = 'a'\nsecret_sha256 = 'xyz'\n", {}, "secret_sha256"),
    ("[[auth.clients]]\nid = 'a'\nsecret_sha256 = '" + "0" * 64 + "'\nscopes = ['root']\n", {},
     "scopes"),
    ("[[auth.clients]]\nid = 'a'\nsecret = 'x'\n", {}, "secret"),
    ("[limits]\nzip_max_ratio = 0.5\n", {}, "limits.zip_max_ratio"),
    ("not toml = = =", {}, "TOML"),
])
def test_bad_config_names_the_key(tmp_path, text, env, names):
    with pytest.raises(ConfigError, match=names):
        load_settings(write(tmp_path, text), env=env)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_replace_rechecks():
    s = load_settings(None, env={})
    assert replace(s, server={"port": 0}).server.port == 0
    with pytest.raises(ConfigError, match="server.workers"):
        replace(s, server={"workers": 0})


def test_clients_from_env_json():
    s = load_settings(None, env={"INGEST_AUTH_CLIENTS":
                                 '[{"id": "x", "secret_sha256": "' + "a" * 64 + '"}]'})
    assert s.auth.clients[0].id == "x"
    assert s.auth.clients[0].scopes == ("ingest", "spec", "read")


def test_an_unknown_section_in_an_environment_variable_is_warned_about(caplog):
    settings = load_settings(env={"INGEST_SERVR_PORT": "9000", "INGEST_TEST_DSN": "x",
                                  "INGEST_WEBHOOK_URL": "http://h/"})
    assert settings.server.port == 8080  # not applied: the section has a typo
    warned = [r.getMessage() for r in caplog.records if r.name == "ingest_server.config"]
    assert len(warned) == 1 and "INGEST_SERVR_PORT" in warned[0]
    assert "did you mean INGEST_SERVER_" in warned[0]


def test_types_are_read_from_the_annotations_not_their_text():
    settings = load_settings(env={"INGEST_LIMITS_ZIP_MAX_RATIO": "50",
                                  "INGEST_SERVER_WORKERS": "2"})
    assert settings.limits.zip_max_ratio == 50.0 and isinstance(settings.limits.zip_max_ratio,
                                                                 float)
    assert settings.server.workers == 2
    with pytest.raises(ConfigError, match=r"server.port: bad value 'x' \(expected int\)"):
        load_settings(env={"INGEST_SERVER_PORT": "x"})


def test_processing_section_defaults_env_and_bad_values(tmp_path):
    p = load_settings(None, env={}).processing
    assert (p.enabled, p.dsn, p.key_match, p.unknown_keys, p.repeat, p.week, p.metric) == (
        False, "", "exact", "reject", "merge", "cqube", "number")
    s = load_settings(write(tmp_path, '[processing]\nkey_match = "trim"\nweek = "iso"\n'),
                      env={"INGEST_PROCESSING_ENABLED": "true",
                           "INGEST_PROCESSING_UNKNOWN_KEYS": "keep",
                           "INGEST_PROCESSING_DSN": "postgresql://x/y"})
    assert (s.processing.enabled, s.processing.key_match, s.processing.unknown_keys,
            s.processing.dsn, s.processing.week) == (True, "trim", "keep", "postgresql://x/y", "iso")
    for key in ("key_match", "unknown_keys", "repeat", "week", "metric"):
        with pytest.raises(ConfigError, match=f"processing.{key}: must be one of"):
            load_settings(None, env={f"INGEST_PROCESSING_{key.upper()}": "bogus"})
    shipped = load_settings("config.toml", env={}).processing
    assert shipped == p  # config.toml lists every key with its default
