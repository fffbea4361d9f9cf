"""The deployment files agree with the code: compose, .env.example, Dockerfile, Makefile and CI."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracker.config import KNOWN_VARIABLES, SOURCE_SECRET, ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent
OUR_SERVICES = ("web", "worker", "beat")
# `${NAME}`, `${NAME:-default}`, `${NAME-default}` and `${NAME:?error}`, as docker compose interpolates them.
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-|:?\?)([^}]*))?\}")
# What the compose stack wires itself (its own Redis, listening inside the container); every other
# tracker setting is the operator's and comes from .env.
STACK_WIRING = {"TRACKER_REDIS_URL": "redis://redis:6379/0", "TRACKER_BIND": "0.0.0.0:8000",
                "FORWARDED_ALLOW_IPS": "*"}  # the published port is on the host's loopback: only its proxy reaches web


class ComposeRefuses(Exception):
    """`docker compose` stops before starting anything: a `${NAME:?error}` variable is unset or empty."""


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
        if operator in (":?", "?") and not (host.get(name) if operator == ":?" else name in host):
            raise ComposeRefuses(f"required variable {name} is missing a value: {default}")
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


def container_env(service: dict[str, Any], dotenv: dict[str, str]) -> dict[str, str]:
    """The environment `docker compose up` gives a service when .env beside the compose file holds dotenv."""
    files = service.get("env_file") or []
    files = [files] if isinstance(files, str) else files
    assert [f if isinstance(f, str) else f["path"] for f in files] == [".env"], "the settings must come from .env"
    return {**dotenv, **{k: interpolate(v, dotenv) for k, v in environment_of(service).items()}}


def random_secret() -> str:
    import secrets

    return secrets.token_urlsafe(32)


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


def test_compose_refuses_to_start_without_a_secret_in_env(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    for name in OUR_SERVICES:
        for dotenv in ({}, env_example, {**env_example, "TRACKER_SECRET_KEY": ""}):
            with pytest.raises(ComposeRefuses, match="TRACKER_SECRET_KEY"):
                container_env(compose["services"][name], dotenv)


def test_every_tracker_setting_comes_from_env_and_the_stack_wires_only_redis_and_bind(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    dotenv = {**env_example, "TRACKER_SECRET_KEY": random_secret(), "TRACKER_PUBLIC_URL": "https://csat.example.com",
              "TRACKER_SMTP_URL": "smtps://mailer:pw@smtp.example.com", "TRACKER_SURVEY_SCALE": "nps",
              "TRACKER_SOURCE_ZENDESK_SECRET": "zd-from-dotenv", "TRACKER_ALERT_URLS": "https://alerts.example.com/x",
              "TRACKER_REDIS_URL": "redis://localhost:6379/0", "TRACKER_BIND": "127.0.0.1:8000"}
    for name in OUR_SERVICES:
        service = compose["services"][name]
        for variable, value in environment_of(service).items():
            assert variable in STACK_WIRING or re.fullmatch(rf"\$\{{{variable}(:[-?][^}}]*)?\}}", value), (
                f"{name} hard-codes {variable}={value}: the operator sets it in .env")
        settings = load_settings(container_env(service, dotenv))
        assert settings.public_url == "https://csat.example.com"
        assert settings.smtp_url == "smtps://mailer:pw@smtp.example.com"
        assert settings.survey_scale == "nps" and settings.source_secrets == {"zendesk": "zd-from-dotenv"}
        assert settings.alert_urls == ("https://alerts.example.com/x",)
        assert (settings.redis_url, settings.bind) == (STACK_WIRING["TRACKER_REDIS_URL"], STACK_WIRING["TRACKER_BIND"])


def test_the_stack_falls_back_to_mailpit_and_publishes_no_placeholder_secret(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    secret = random_secret()
    dotenv = {**env_example, "TRACKER_SECRET_KEY": secret}
    settings = load_settings(container_env(compose["services"]["worker"], dotenv))
    assert settings.smtp_url == "smtp://mailpit:1025" and settings.secret_key == secret
    assert settings.source_secrets == {}, "a source must not be enabled with a secret published in this repository"


@pytest.mark.parametrize("secret", ["change-me-in-production-please", "please-change-this-secret-key-0123456789",
                                    "short-secret"])
@pytest.mark.parametrize("name", OUR_SERVICES)
def test_web_worker_and_beat_refuse_to_start_with_a_placeholder_secret_from_env(
    compose: dict[str, Any], env_example: dict[str, str], name: str, secret: str
) -> None:
    # Compose passes a set value on; the process's own start-up check must then refuse it.
    service = compose["services"][name]
    environ = container_env(service, {**env_example, "TRACKER_SECRET_KEY": secret})
    environ["TRACKER_REDIS_URL"] = "redis://127.0.0.1:1/0"  # never reached: the secret stops it first
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    result = subprocess.run([sys.executable, "-m", "tracker", *command_words(service["command"])],
                            env={**clean, **environ}, capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "TRACKER_SECRET_KEY" in lines[0], result.stderr


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


def test_every_published_port_is_on_loopback(compose: dict[str, Any]) -> None:
    # The reverse proxy (deploy/) is the one door in; Mailpit's UI shows every customer's survey mail.
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert "127.0.0.1:8000:8000" in compose["services"]["web"]["ports"]


def test_mailpit_catches_the_survey_mails(compose: dict[str, Any]) -> None:
    mailpit = compose["services"].get("mailpit")
    assert mailpit, "docker-compose.yml has no mailpit service"
    assert str(mailpit["image"]).startswith("axllent/mailpit:")
    ports = " ".join(str(port) for port in mailpit.get("ports", []))
    assert "127.0.0.1:8025:8025" in ports


def test_every_image_is_pinned_to_a_version(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = str(service["image"])
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name} uses {image}, not a pinned version"
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert version and compose["services"]["web"]["image"] == f"satisfaction-tracker:{version.group(1)}"
    for base in re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE):
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), f"Dockerfile builds FROM {base}, not pinned"


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_have_a_healthcheck_that_is_a_real_tracker_probe(compose: dict[str, Any], name: str) -> None:
    from tracker.cli.commands import build_parser

    words = command_words(compose["services"][name]["healthcheck"]["test"])
    assert words[0] == "CMD" and words[1] == "tracker", words
    args = build_parser().parse_args(words[2:])
    assert args.command == "check" and args.process == name


# --- deploy/: systemd units and the reverse proxy ---------------------------------------------------


def systemd_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(path.read_text())
    return unit


@pytest.mark.parametrize("process", OUR_SERVICES)
def test_a_systemd_unit_runs_each_process_from_the_env_file_and_restarts_it_on_failure(process: str) -> None:
    from tracker.cli.commands import build_parser

    [path] = [p for p in (ROOT / "deploy" / "systemd").glob(f"tracker-{process}*.service")]
    unit = systemd_unit(path)
    service = unit["Service"]
    assert service["Restart"] in ("on-failure", "always")
    assert service["EnvironmentFile"] == "/etc/tracker/tracker.env"
    assert service["User"] not in ("root", "0")
    program, *args = shlex.split(service["ExecStart"])
    assert program.endswith("/bin/tracker") and build_parser().parse_known_args(args)[0].command == process
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_reverse_proxy_examples_forward_to_web_with_tls_and_body_limits() -> None:
    nginx = (ROOT / "deploy" / "nginx" / "tracker.conf").read_text()
    assert "proxy_pass http://tracker_web;" in nginx and "server 127.0.0.1:8000;" in nginx
    assert "listen 443 ssl;" in nginx and "ssl_certificate " in nginx
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
        assert f"proxy_set_header {header} " in nginx
    sizes = [int(m) for m in re.findall(r"client_max_body_size (\d+)m;", nginx)]
    assert sizes and min(sizes) >= 2, "bodies up to 1 MiB must reach the tracker, which answers 413 itself"
    caddy = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy 127.0.0.1:8000" in caddy and "max_size" in caddy


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
    copied = [name for line in re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
              for name in line.split()]
    assert {"pyproject.toml", "README.md", "constraints.txt", "tracker", "webhooks", "workers"} <= set(copied)
    for needed in copied:
        assert needed not in ignored, f"the Dockerfile copies {needed}, which .dockerignore leaves out"
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
    assert "pip install --disable-pip-version-check -c constraints.txt -e '.[test]'" in out
    assert f"{tmp_path}/venv/bin/pytest" in out
    assert out.index("-m venv") < out.index("pip install") < out.index("bin/pytest")


def test_make_run_on_a_fresh_checkout_creates_the_venv_installs_dev_extras_and_starts_tracker_dev(
    tmp_path: Path,
) -> None:
    out = make_dry_run("run", tmp_path / "venv")
    assert "-m venv" in out
    assert "pip install --disable-pip-version-check -c constraints.txt -e '.[dev]'" in out
    assert f"{tmp_path}/venv/bin/tracker dev" in out


def test_make_test_does_not_reinstall_while_pyproject_is_unchanged(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    newer = max((ROOT / name).stat().st_mtime for name in ("pyproject.toml", "constraints.txt")) + 10
    for stamp in (".installed-test", ".installed-dev"):
        (venv / stamp).touch()
        os.utime(venv / stamp, (newer, newer))
    out = make_dry_run("test", venv)
    assert "pip install" not in out and "-m venv" not in out
    assert f"{venv}/bin/pytest" in out
    older = newer - 3600 * 24 * 365 * 30
    os.utime(venv / ".installed-test", (older, older))
    assert "pip install" in make_dry_run("test", venv)


def _pins() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert name and version, f"constraints.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_constraints_pin_every_requirement_within_the_range_pyproject_allows() -> None:
    """make, CI and the image install constraints.txt's versions; each must be one pyproject.toml accepts."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    pins = _pins()
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name == "satisfaction-tracker":
            continue
        assert name in pins, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside pyproject's {requirement.specifier}")
    assert "satisfaction-tracker" not in pins


def test_image_builds_its_wheels_from_the_pinned_versions() -> None:
    assert re.search(r"^RUN pip wheel --constraint constraints.txt ", (ROOT / "Dockerfile").read_text(), re.MULTILINE)


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


def test_the_run_ahead_script_is_executable_strict_bash_and_refuses_a_bad_day_count() -> None:
    script = ROOT / ".ci" / "ahead"
    assert os.access(script, os.X_OK), ".ci/ahead is not executable"
    assert "set -euo pipefail" in script.read_text()
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
        refused = subprocess.run(["bash", str(script), "soon"], capture_output=True, text=True, timeout=30)
        assert refused.returncode == 2 and "DAYS is a whole number" in refused.stderr
