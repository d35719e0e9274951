"""compose.yaml, the Kubernetes manifests and the systemd units agree with the image and the app.

Every command they run is parsed by alertcast's own command line, every
configuration they mount is assembled in a folder and loaded with
``load_config``, and their ports and probes are the image's and the app's.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from alertcast.cli import _parser
from alertcast.config import load_config
from alertcast.ha.roles import ALL_ROLES
from tests.deploy.deployfiles import (
    COMPOSE,
    CONFIG_IN_IMAGE,
    DOCKERFILE,
    EXAMPLE_CONFIG,
    KUBERNETES,
    REPO,
    SYSTEMD,
    copies,
    dockerfile_stages,
    kubernetes_object,
    kubernetes_objects,
    lay_out_projected_volume,
    unit_file,
    yaml_documents,
)

STAGES = dockerfile_stages()
FINAL = STAGES[-1]
IMAGE_CMD = FINAL.one("CMD").exec_form()
PORT = 8080
CONFIG_DIR = str(Path(CONFIG_IN_IMAGE).parent)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)
    monkeypatch.delenv("ALERTCAST_DATABASE_URL", raising=False)
    return monkeypatch


def cli(argv: list[str]) -> argparse.Namespace:
    """``argv`` as alertcast's command line reads it; a wrong word fails the test."""
    try:
        return _parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing
        raise AssertionError(f"alertcast refuses {argv}") from exc


def test_the_command_line_check_refuses_what_alertcast_refuses() -> None:
    with pytest.raises(AssertionError):
        cli(["serve", "--role", "mailman"])
    assert cli(["serve", "--role", "web,worker"]).roles == [frozenset({"web", "worker"})]


def test_the_image_command_is_one_alertcast_accepts() -> None:
    args = cli(IMAGE_CMD)
    assert args.command == "serve"
    assert str(args.config) == CONFIG_IN_IMAGE
    assert args.roles == []  # every role


def test_the_example_configuration_listens_where_the_image_expects() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert config.service.port == PORT
    assert FINAL.one("EXPOSE").arguments.split() == [str(PORT)]
    assert config.service.host == "0.0.0.0"  # reachable from outside the container


def test_the_dockerignore_keeps_every_copied_file_in_the_context() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in STAGES:
        for sources, _ in copies(stage):
            for source in sources:
                if source.startswith("--") or "=" in source:
                    continue
                for pattern in patterns:
                    assert not _docker_ignores(pattern, source), (source, pattern)
    # ... and the secrets and databases that must never reach an image stay out.
    for kept_out in (
        ".env",
        "deploy/.env",
        "deploy/alertcast.env",
        "data/alertcast.db",
        "alertcast.db",
        ".git/config",
        ".venv/bin/python",
    ):
        assert any(_docker_ignores(p, kept_out) for p in patterns), kept_out


def _docker_ignores(pattern: str, path: str) -> bool:
    """Docker's .dockerignore matching: ``*`` stays within one folder, ``**`` spans any,
    and a pattern that names a folder excludes everything under it."""
    regex = ""
    rest = pattern.strip("/")
    while rest:
        if rest.startswith("**/"):
            regex, rest = regex + "(?:.*/)?", rest[3:]
        elif rest.startswith("**"):
            regex, rest = regex + ".*", rest[2:]
        elif rest[0] == "*":
            regex, rest = regex + "[^/]*", rest[1:]
        elif rest[0] == "?":
            regex, rest = regex + "[^/]", rest[1:]
        else:
            regex, rest = regex + re.escape(rest[0]), rest[1:]
    return re.fullmatch(regex + "(?:/.*)?", path) is not None


def test_the_dockerignore_matching_is_dockers() -> None:
    assert _docker_ignores("**/*.env", "deploy/alertcast.env")
    assert not _docker_ignores("*.env", "deploy/alertcast.env")
    assert _docker_ignores("data", "data/alertcast.db")
    assert not _docker_ignores("data", "database.py")


# -- compose.yaml -----------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    (document,) = yaml_documents(COMPOSE)
    return document


def _expand(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}``."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in variables, f"compose needs ${name}"
        return variables[name]

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?::[-?][^}]*)?\}", one, value)


def test_compose_runs_postgres_a_migration_and_two_replicas() -> None:
    services = _compose()["services"]
    assert services["postgres"]["image"] == "postgres:16"
    replicas = [s for s in services.values() if s.get("command") == IMAGE_CMD]
    assert len(replicas) == 2
    migrate = services["migrate"]
    args = cli(migrate["command"])
    assert (args.command, args.db_command, str(args.config)) == ("db", "upgrade", CONFIG_IN_IMAGE)
    assert migrate["restart"] == "no"
    for service in [migrate, *replicas]:
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    for replica in replicas:
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert replica["image"] == migrate["image"]


def test_compose_publishes_each_replica_on_its_own_port() -> None:
    services = _compose()["services"]
    replicas = [s for s in services.values() if s.get("command") == IMAGE_CMD]
    published = []
    for replica in replicas:
        (mapping,) = replica["ports"]
        host, host_port, container_port = mapping.split(":")
        assert host == "127.0.0.1"
        assert int(container_port) == PORT
        published.append(host_port)
    assert len(set(published)) == len(replicas)


def test_compose_database_url_names_the_postgres_service() -> None:
    services = _compose()["services"]
    postgres = services["postgres"]["environment"]
    variables = {"POSTGRES_PASSWORD": "pw"}
    for name in ("migrate", "alertcast-1", "alertcast-2"):
        url = urlsplit(_expand(services[name]["environment"]["ALERTCAST_DATABASE_URL"], variables))
        assert url.scheme == "postgresql"
        assert url.hostname == "postgres"
        assert url.username == postgres["POSTGRES_USER"]
        assert url.password == _expand(postgres["POSTGRES_PASSWORD"], variables)
        assert url.path == "/" + postgres["POSTGRES_DB"]


def test_compose_mounts_a_configuration_that_loads(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The image's alertcast.toml plus compose's read-only mounts, as a replica sees them."""
    services = _compose()["services"]
    replica = services["alertcast-1"]
    etc = tmp_path / "etc-alertcast"
    etc.mkdir()
    etc.joinpath("alertcast.toml").write_text(
        EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
            "/var/lib/alertcast", (tmp_path / "data").as_posix()
        ),
        encoding="utf-8",
    )
    for volume in replica["volumes"]:
        source, target, mode = volume.split(":")
        assert mode == "ro"
        assert target.startswith(CONFIG_DIR + "/")
        origin = (COMPOSE.parent / source).resolve()
        assert origin.exists(), source
        destination = etc / target.removeprefix(CONFIG_DIR + "/")
        destination.symlink_to(origin, target_is_directory=origin.is_dir())
    config = load_config(etc / "alertcast.toml")
    assert config.rules_file is not None
    assert any(c.enabled for c in config.channels)
    assert all(s.get("volumes") == replica["volumes"] for s in services.values() if "build" in s)


# -- Kubernetes -------------------------------------------------------------------------


def _pod_spec(kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = kubernetes_object(kind, name)["spec"]["template"]["spec"]
    return spec


def _container(kind: str, name: str) -> dict[str, Any]:
    (container,) = _pod_spec(kind, name)["containers"]
    return container


def test_every_manifest_is_namespace_less_and_named() -> None:
    objects = list(kubernetes_objects())
    kinds = {d["kind"] for _, d in objects}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} <= kinds
    for path, document in objects:
        assert document.get("apiVersion"), path
        if document["kind"] == "Kustomization":
            continue
        assert document["metadata"]["name"], path
        assert "namespace" not in document["metadata"], path


def test_the_kustomization_applies_everything_but_the_example_secret_and_the_job() -> None:
    (kustomization,) = yaml_documents(KUBERNETES / "kustomization.yaml")
    listed = set(kustomization["resources"])
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files - {"secret.example.yaml", "migrate-job.yaml"}


def test_the_deployment_runs_the_image_command_on_two_or_more_replicas() -> None:
    deployment = kubernetes_object("Deployment", "alertcast")
    assert deployment["spec"]["replicas"] >= 2
    container = _container("Deployment", "alertcast")
    assert container["args"] == IMAGE_CMD
    assert "command" not in container  # the image's ENTRYPOINT, alertcast
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_the_probes_ask_the_apps_health_paths_on_its_port() -> None:
    container = _container("Deployment", "alertcast")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": PORT}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == PORT


def test_the_service_and_the_budget_select_the_deployments_pods() -> None:
    deployment = kubernetes_object("Deployment", "alertcast")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = kubernetes_object("Service", "alertcast")
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    named = {p["name"] for p in _container("Deployment", "alertcast")["ports"]}
    assert port["targetPort"] in named
    budget = kubernetes_object("PodDisruptionBudget", "alertcast")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_the_pods_run_as_the_images_user_and_not_root() -> None:
    uid = int(FINAL.one("USER").arguments.split(":")[0])
    for kind, name in (("Deployment", "alertcast"), ("Job", "alertcast-migrate")):
        context = _pod_spec(kind, name)["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == uid


def test_the_migration_job_upgrades_with_the_deployments_image_and_files() -> None:
    job = _container("Job", "alertcast-migrate")
    args = cli(job["args"])
    assert (args.command, args.db_command, str(args.config)) == ("db", "upgrade", CONFIG_IN_IMAGE)
    app = _container("Deployment", "alertcast")
    assert job["image"] == app["image"]
    assert job["envFrom"] == app["envFrom"]

    def config_volume(kind: str, name: str) -> dict[str, Any]:
        (volume,) = [v for v in _pod_spec(kind, name)["volumes"] if v["name"] == "config"]
        return volume

    assert config_volume("Job", "alertcast-migrate") == config_volume("Deployment", "alertcast")


def test_the_configmaps_make_a_configuration_that_loads_with_the_secrets_keys(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    maps = {
        d["metadata"]["name"]: d["data"]
        for _, d in kubernetes_objects()
        if d["kind"] == "ConfigMap"
    }
    secret = kubernetes_object("Secret", "alertcast-secrets")["stringData"]
    for name in secret:
        clean_env.setenv(name, "value-for-tests")
    clean_env.delenv("ALERTCAST_DATABASE_URL")
    container = _container("Deployment", "alertcast")
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == CONFIG_DIR and mount["readOnly"] is True
    (volume,) = [
        v for v in _pod_spec("Deployment", "alertcast")["volumes"] if v["name"] == "config"
    ]
    etc = tmp_path / "etc-alertcast"
    lay_out_projected_volume(volume, maps, etc)
    text = (etc / "alertcast.toml").read_text(encoding="utf-8")
    (etc / "alertcast.toml").write_text(
        text.replace("/var/lib/alertcast", (tmp_path / "data").as_posix()), encoding="utf-8"
    )

    config = load_config(etc / Path(CONFIG_IN_IMAGE).name)

    assert config.service.port == PORT and config.service.host == "0.0.0.0"
    assert config.rules_file == etc / "rules.toml"
    # Every file of the feed and channel ConfigMaps is mounted, so none is left out silently.
    assert {f.file.name for f in config.feeds} == set(maps["alertcast-feeds"])
    assert {c.file.name for c in config.channels} == set(maps["alertcast-channels"])
    # Every secret a channel or feed names is a key of the Secret, and so an env var of the pod.
    named = {v for item in (*config.feeds, *config.channels) for v in item.secrets.values()}
    assert named <= set(secret)
    assert {"ALERTCAST_DATABASE_URL", "ALERTCAST_SUBSCRIBER_KEY"} <= set(secret)
    assert all(value.startswith(("CHANGE-ME", "postgresql://")) for value in secret.values())


def test_the_data_folder_is_writable_under_a_read_only_root() -> None:
    container = _container("Deployment", "alertcast")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/lib/alertcast", "/tmp"} <= mounted
    assert load_config(EXAMPLE_CONFIG).service.data_dir == Path("/var/lib/alertcast")


# -- systemd ----------------------------------------------------------------------------

SPLIT_UNITS = {
    "alertcast-web.service": "web",
    "alertcast-worker@.service": "worker",
    "alertcast-poller.service": "poller",
    "alertcast-bot.service": "bot",
}


def _exec_start(path: Path) -> list[str]:
    return shlex.split(unit_file(path)["Service"]["ExecStart"])


def test_the_units_are_the_all_in_one_and_one_per_role() -> None:
    names = {p.name for p in SYSTEMD.glob("*.service")}
    assert names == {"alertcast.service", *SPLIT_UNITS}
    assert set(SPLIT_UNITS.values()) == ALL_ROLES


@pytest.mark.parametrize("name", ["alertcast.service", *SPLIT_UNITS])
def test_each_unit_runs_alertcast_from_the_images_environment(name: str) -> None:
    unit = unit_file(SYSTEMD / name)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    argv = _exec_start(SYSTEMD / name)
    build_env = dict(
        pair.split("=", 1)
        for instruction in STAGES[0].all("ENV")
        for pair in shlex.split(instruction.arguments)
    )
    assert argv[0] == f"{build_env['VIRTUAL_ENV']}/bin/alertcast"
    # What systemd runs for instance 1 of a template unit (%i is the instance name).
    args = cli([word.replace("%i", "1") for word in argv[1:]])
    assert args.command == "serve"
    assert str(args.config) == CONFIG_IN_IMAGE
    roles = frozenset().union(*args.roles)
    assert roles == ({SPLIT_UNITS[name]} if name in SPLIT_UNITS else frozenset())
    service = unit["Service"]
    assert service["User"] not in ("root", "0")
    assert service["EnvironmentFile"].startswith(CONFIG_DIR + "/")
    assert service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    if name in SPLIT_UNITS and SPLIT_UNITS[name] != "web":
        # Probes and /metrics only, on a port of its own beside the web unit's.
        assert args.port is not None and args.port != 8080


def test_the_split_units_of_one_host_listen_on_different_ports() -> None:
    ports = []
    for name in SPLIT_UNITS:
        args = cli([w.replace("%i", "1") for w in _exec_start(SYSTEMD / name)[1:]])
        ports.append(args.port if args.port is not None else 8080)
    assert len(set(ports)) == len(ports)


def test_the_all_in_one_unit_conflicts_with_the_single_instance_split_units() -> None:
    conflicts = set(unit_file(SYSTEMD / "alertcast.service")["Unit"]["Conflicts"].split())
    assert conflicts == {n for n in SPLIT_UNITS if "@" not in n}
    for name in SPLIT_UNITS:
        assert unit_file(SYSTEMD / name)["Unit"]["Conflicts"] == "alertcast.service"
