"""The deployment files agree with the code: compose, .env.example, Dockerfile, Makefile and CI."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracker.config import KNOWN_VARIABLES, SOURCE_SECRET, ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent
OUR_SERVICES = ("web", "worker", "beat")
# `${NAME}`, `${NAME:-default}` and `${NAME-default}`, as docker compose interpolates them.
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def is_known(name: str) -> bool:
    return name in KNOWN_VARIABLES or SOURCE_SECRET.match(name) is not None


def interpolate(value: str, host: dict[str, str]) -> str:
    """Expand compose-style variable references the way `docker compose` does."""

    def expand(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        if operator == ":-":
            return host.get(name) or default
        if operator == "-":
            return host.get(name, default)
        return host.get(name, "")

    return INTERPOLATION.sub(expand, value)


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_words(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: not NAME=value: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def tracker_commands() -> tuple[str, ...]:
    from tracker.cli.commands import COMMANDS

    return tuple(COMMANDS)


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ROOT / ".env.example")


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_runs_web_worker_and_beat_from_our_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in OUR_SERVICES:
        assert name in services, f"docker-compose.yml has no {name} service"
        assert services[name].get("build"), f"{name} does not build the image from this repository"
    images = {services[name].get("image") for name in OUR_SERVICES}
    assert len(images) == 1, f"web, worker and beat should share one image, got {images}"


def test_every_service_of_our_image_runs_a_real_tracker_subcommand(
    compose: dict[str, Any], tracker_commands: tuple[str, ...]
) -> None:
    our_image = compose["services"]["web"].get("image")
    ours = {
        name: service for name, service in compose["services"].items()
        if service.get("build") or (our_image and service.get("image") == our_image)
    }
    assert set(OUR_SERVICES) <= set(ours)
    for name, service in ours.items():
        words = command_words(service.get("command"))
        assert words, f"{name} has no command, so it would silently run the image's default"
        assert words[0] in tracker_commands, f"{name} runs `tracker {words[0]}`; known: {tracker_commands}"
    assert [command_words(ours[name]["command"])[0] for name in OUR_SERVICES] == list(OUR_SERVICES)


def test_every_variable_in_compose_is_one_the_tracker_reads(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if not service.get("build"):
            continue
        for variable in environment_of(service):
            assert is_known(variable), f"{name} sets {variable}, which tracker/config.py does not read"
    text = (ROOT / "docker-compose.yml").read_text()
    for match in INTERPOLATION.finditer(text):
        assert is_known(match.group(1)), f"docker-compose.yml interpolates unknown {match.group(1)}"


def test_compose_environment_is_accepted_by_the_tracker_with_an_empty_host_environment(
    compose: dict[str, Any],
) -> None:
    env = {k: interpolate(v, {}) for k, v in environment_of(compose["services"]["web"]).items()}
    settings = load_settings(env)
    assert settings.redis_url.startswith("redis://redis:")
    assert settings.smtp_url.startswith("smtp://mailpit:")
    assert settings.bind.startswith("0.0.0.0:")
    assert set(settings.source_secrets) >= {"standard", "zendesk"}


def test_compose_takes_secrets_from_the_host_environment(compose: dict[str, Any]) -> None:
    env = environment_of(compose["services"]["worker"])
    host = {
        "TRACKER_SECRET_KEY": "from-the-host-environment-0123456789",
        "TRACKER_SOURCE_ZENDESK_SECRET": "zendesk-from-host",
    }
    settings = load_settings({k: interpolate(v, host) for k, v in env.items()})
    assert settings.secret_key == host["TRACKER_SECRET_KEY"]
    assert settings.source_secrets["zendesk"] == "zendesk-from-host"


def test_web_worker_and_beat_share_one_environment(compose: dict[str, Any]) -> None:
    environments = [environment_of(compose["services"][name]) for name in OUR_SERVICES]
    assert environments[0] == environments[1] == environments[2]


def test_redis_keeps_an_append_only_file_on_a_volume_and_has_a_healthcheck(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert str(redis["image"]).startswith("redis:")
    command = " ".join(command_words(redis.get("command")))
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert any(str(volume).split(":")[-1] == "/data" for volume in redis.get("volumes", []))
    health = command_words(redis["healthcheck"]["test"])
    assert "redis-cli" in health and "ping" in health


def test_web_worker_and_beat_wait_for_a_healthy_redis(compose: dict[str, Any]) -> None:
    for name in OUR_SERVICES:
        depends = compose["services"][name].get("depends_on")
        assert depends and "redis" in depends, f"{name} does not depend on redis"
        if isinstance(depends, dict):
            assert depends["redis"].get("condition") == "service_healthy", f"{name} starts before redis is up"


def test_web_publishes_port_8000(compose: dict[str, Any]) -> None:
    ports = [str(port) for port in compose["services"]["web"].get("ports", [])]
    assert any(port.endswith("8000:8000") for port in ports), ports


def test_mailpit_catches_the_survey_mails(compose: dict[str, Any]) -> None:
    mailpit = compose["services"].get("mailpit")
    assert mailpit, "docker-compose.yml has no mailpit service"
    assert str(mailpit["image"]).startswith("axllent/mailpit")
    ports = " ".join(str(port) for port in mailpit.get("ports", []))
    assert "8025:8025" in ports and "1025:1025" in ports
    smtp_url = environment_of(compose["services"]["worker"])["TRACKER_SMTP_URL"]
    assert smtp_url == "smtp://mailpit:1025"


# --- .env.example -------------------------------------------------------------------------------


def test_env_example_lists_every_variable_the_tracker_reads(env_example: dict[str, str]) -> None:
    missing = [name for name in KNOWN_VARIABLES if name not in env_example]
    assert not missing, f".env.example lacks {missing}"
    assert {"TRACKER_SOURCE_STANDARD_SECRET", "TRACKER_SOURCE_ZENDESK_SECRET"} <= set(env_example)


def test_env_example_has_no_variable_the_tracker_ignores(env_example: dict[str, str]) -> None:
    unknown = [name for name in env_example if not is_known(name)]
    assert not unknown, f".env.example sets variables tracker/config.py does not read: {unknown}"


def test_env_example_comments_every_variable() -> None:
    previous = ""
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.match(r"^[A-Z_0-9]+=", line):
            assert previous.startswith("# "), f"{line.split('=')[0]} has no comment line above it"
        previous = line


def test_env_example_values_are_the_defaults_the_code_uses(env_example: dict[str, str]) -> None:
    required = {
        "TRACKER_REDIS_URL": "redis://localhost:6379/0",
        "TRACKER_SECRET_KEY": "a-secret-key-that-is-long-enough",
        "TRACKER_SMTP_URL": "smtp://localhost:1025",
    }
    for name in required:
        assert env_example[name] == "", f"{name} has no default, so .env.example should leave it empty"
    with_example = load_settings({**env_example, **required})
    without = load_settings(required)
    assert with_example == without


def test_env_example_without_required_values_names_the_missing_variable(env_example: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="TRACKER_REDIS_URL"):
        load_settings(env_example)


# --- Dockerfile ---------------------------------------------------------------------------------


def test_image_runs_tracker_web_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tracker"]' in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert cmd and yaml.safe_load(cmd.group(1)) == ["web"]
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 8000$", text, re.MULTILINE)
    assert "TRACKER_BIND=0.0.0.0:8000" in text


def test_dockerignore_keeps_what_the_image_build_copies() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for needed in ("pyproject.toml", "README.md", "tracker", "webhooks", "workers"):
        assert needed not in ignored
    assert ".venv" in ignored and ".env" in ignored and ".git" in ignored


# --- Makefile and CI ----------------------------------------------------------------------------


def make_dry_run(target: str, venv: Path) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # `make test` runs this very test: the outer make's flags (-s, -j, ...) must not leak in.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        [make, "-n", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True, text=True, check=True, timeout=60, env=env,
    )
    return result.stdout


def test_make_test_on_a_fresh_checkout_creates_the_venv_installs_test_extras_and_runs_pytest(
    tmp_path: Path,
) -> None:
    out = make_dry_run("test", tmp_path / "venv")
    assert "-m venv" in out
    assert "pip install --disable-pip-version-check -e '.[test]'" in out
    assert f"{tmp_path}/venv/bin/pytest" in out
    assert out.index("-m venv") < out.index("pip install") < out.index("bin/pytest")


def test_make_run_on_a_fresh_checkout_creates_the_venv_installs_dev_extras_and_starts_tracker_dev(
    tmp_path: Path,
) -> None:
    out = make_dry_run("run", tmp_path / "venv")
    assert "-m venv" in out
    assert "pip install --disable-pip-version-check -e '.[dev]'" in out
    assert f"{tmp_path}/venv/bin/tracker dev" in out


def test_make_test_does_not_reinstall_while_pyproject_is_unchanged(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    newer = (ROOT / "pyproject.toml").stat().st_mtime + 10
    for stamp in (".installed-test", ".installed-dev"):
        (venv / stamp).touch()
        os.utime(venv / stamp, (newer, newer))
    out = make_dry_run("test", venv)
    assert "pip install" not in out and "-m venv" not in out
    assert f"{venv}/bin/pytest" in out
    older = newer - 3600 * 24 * 365 * 30
    os.utime(venv / ".installed-test", (older, older))
    assert "pip install" in make_dry_run("test", venv)


def test_ci_script_is_executable_strict_bash_that_runs_make_test() -> None:
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK), ".ci/run is not executable"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert "set -euo pipefail" in text
    commands = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    assert "make test" in commands
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
