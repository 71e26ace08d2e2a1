"""doki.toml: the guide's flags as defaults, environments on top, and every mistake named with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from doki_cli.config import MonitoringSettings, SecretRef, SmokeCheck, kept_setting_problems, load_config
from doki_cli.errors import DokiError
from doki_cli.model import NO_PROBE, Probe, RunSettings, Volume, Vpc
from tests.helpers import REPO

MINIMAL = '[service]\nname = "api"\nproject = "proj-123"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doki.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, **kwargs: str) -> list[str]:
    with pytest.raises(DokiError) as caught:
        load_config(write(tmp_path, text), **kwargs)
    assert caught.value.code == "config_invalid"
    assert caught.value.hint == "fix doki.toml (its keys are described in docs/configuration.md)"
    return [line[4:] for line in caught.value.message.splitlines()[1:]]


def test_unset_keys_take_the_deployment_guides_flags(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert (config.region, config.port, config.memory, config.cpu) == ("us-central1", 8080, "512Mi", "1")
    assert (config.min_instances, config.max_instances, config.timeout_seconds) == (0, 10, 300)
    assert config.allow_unauthenticated is True
    assert config.ingress == "all"
    assert config.image == "us-central1-docker.pkg.dev/proj-123/cloud-run-source-deploy/api"
    assert config.service_path == "projects/proj-123/locations/us-central1/services/api"


def test_an_environment_overlays_the_service_and_merges_env_and_secrets(tmp_path: Path) -> None:
    text = MINIMAL + (
        'max_instances = 5\n[service.env]\nENVIRONMENT = "production"\nALLOWED_ORIGINS = ["https://a.example"]\n'
        '[service.secrets]\nENCRYPTION_KEY = "encryption-key"\n'
        '[environments.staging]\nname = "api-staging"\nmax_instances = 2\n'
        '[environments.staging.env]\nALLOWED_ORIGINS = ["https://s.example", "https://t.example"]\n'
        '[environments.staging.secrets]\nSESSION_SECRET_KEY = "session-secret:3"\n'
    )
    staging = load_config(write(tmp_path, text), env="staging")
    assert (staging.name, staging.max_instances, staging.environment) == ("api-staging", 2, "staging")
    assert staging.env == {"ENVIRONMENT": "production", "ALLOWED_ORIGINS": "https://s.example,https://t.example"}
    assert staging.secrets == {
        "ENCRYPTION_KEY": SecretRef("encryption-key", "latest"),
        "SESSION_SECRET_KEY": SecretRef("session-secret", "3"),
    }
    base = load_config(write(tmp_path, text))
    assert (base.name, base.max_instances) == ("api", 5)


def test_project_and_region_options_win_over_the_file(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, MINIMAL + 'region = "europe-west1"\n'), project="other-proj", region="asia-east1"
    )
    assert (config.project, config.region) == ("other-proj", "asia-east1")


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('memory = "512Mb"', "memory = '512Mb' is not valid: use Kubernetes quantities like 512Mi or 1Gi"),
        ('memory = "64Mi"', "memory = '64Mi' is outside what Cloud Run allows: use 128Mi to 32Gi"),
        ('cpu = "3"', "cpu = '3' is not valid: use 1, 2, 4, 6 or 8, or a fraction below 1 such as 0.5 or 500m"),
        ('cpu = "1"\nmemory = "8Gi"', "memory above 4Gi needs cpu 2 or more (cpu is 1)"),
        ('cpu = "4"\nmemory = "1Gi"', "cpu 4 needs more memory: at least 2Gi"),
        ('cpu = "500m"\nmemory = "2Gi"\nconcurrency = 1', "cpu 500m allows at most 1Gi of memory"),
        ('cpu = "400m"\nmemory = "1Gi"\nconcurrency = 1', "cpu 400m allows at most 512Mi of memory"),
        ('cpu = "0.5"', "cpu 0.5 (below 1) needs concurrency = 1"),
        ("min_instances = 3\nmax_instances = 2", "max_instances = 2 is below min_instances = 3: raise max_instances"),
        ("timeout_seconds = 4000", "timeout_seconds = 4000 is not valid: use a whole number from 1 to 3600"),
        ("concurrency = 0", "concurrency = 0 is not valid: use a whole number from 1 to 1000"),
        ("port = true", "port = True is not valid: use a whole number from 1 to 65535"),
        (
            'region = "US Central"',
            "region = 'US Central' is not valid: a Cloud Run region such as us-central1 or europe-west1",
        ),
        (
            'ingress = "public"',
            "ingress = 'public' is not valid: use one of all, internal, internal-and-cloud-load-balancing",
        ),
        ('allow_unauthenticated = "yes"', "allow_unauthenticated = 'yes' is not valid: use true or false"),
        ('invoker_iam_check = "off"', "invoker_iam_check = 'off' is not valid: use true or false"),
        (
            "allow_unauthenticated = false\ninvoker_iam_check = false",
            "invoker_iam_check = false lets anyone invoke the service, but allow_unauthenticated = false asks for "
            "authenticated callers only: set invoker_iam_check = true (or drop it)",
        ),
        (
            'service_account = "runtime"',
            "service_account = 'runtime' is not a service account email (NAME@PROJECT.iam.gserviceaccount.com, "
            "or PROJECT_NUMBER-compute@developer.gserviceaccount.com)",
        ),
        (
            'memroy = "1Gi"',
            "unknown key 'memroy': did you mean 'memory'?",
        ),
        ('[service.env]\nPORT = "9000"', "env name 'PORT' is not allowed: Cloud Run sets it itself"),
        (
            '[service.env]\nX_GOOGLE_TRACE = "1"',
            "env name 'X_GOOGLE_TRACE' is not allowed: Cloud Run keeps names starting with X_GOOGLE_ for itself",
        ),
        (
            '[service.secrets]\nKEY = "bad name!"',
            "secrets KEY = 'bad name!' is not valid: name a Secret Manager secret "
            '(letters, digits, - and _, up to 255) as "name" or "name:version"',
        ),
        ('[service.secrets]\nKEY = "key:0"', "secrets KEY = 'key:0' has version '0': use latest or a number from 1"),
        (
            '[service.env]\nKEY = "x"\n[service.secrets]\nKEY = "key"',
            "KEY is in both [env] and [secrets]: keep it in one (secret values belong in [secrets])",
        ),
    ],
)
def test_each_mistake_is_named_with_what_is_allowed(tmp_path: Path, extra: str, problem: str) -> None:
    assert problems(tmp_path, MINIMAL + extra + "\n") == [problem]


def test_every_problem_is_reported_at_once_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nname = "Bad_Name"\nmemory = "lots"\n')
    with pytest.raises(DokiError) as caught:
        load_config(path)
    assert caught.value.message == (
        f"{path} [service] has 3 problems:\n"
        "  - name = 'Bad_Name' is not valid: "
        "lowercase letters, digits and hyphens, starting with a letter, at most 49\n"
        "  - project is missing: a Google Cloud project id such as my-project-123 (or pass --project)\n"
        "  - memory = 'lots' is not valid: use Kubernetes quantities like 512Mi or 1Gi"
    )


def test_an_unknown_environment_names_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[environments.staging]\nname = "s"\n')
    with pytest.raises(DokiError) as caught:
        load_config(path, env="prod")
    assert caught.value.message == f"{path} has no environment 'prod' (known: staging)"
    assert caught.value.hint == "add an [environments.prod] table, or pick one of the known environments"


def test_this_repositorys_doki_toml_describes_the_guides_deployment() -> None:
    config = load_config(REPO / "doki.toml")
    assert (config.name, config.memory, config.cpu, config.timeout_seconds) == ("doki-backend", "512Mi", "1", 300)
    assert (config.min_instances, config.max_instances, config.allow_unauthenticated) == (0, 10, True)
    assert config.env["ENVIRONMENT"] == "production"
    assert set(config.secrets) == {
        "SUPABASE_SECRET_KEY",
        "SUPABASE_JWT_SECRET",
        "GOOGLE_CLIENT_ID",
        "GOOGLE_CLIENT_SECRET",
        "SESSION_SECRET_KEY",
        "ENCRYPTION_KEY",
    }
    assert load_config(REPO / "doki.toml", env="staging").name == "doki-backend-staging"


def test_release_defaults_check_the_health_contract_and_move_all_traffic_at_once(tmp_path: Path) -> None:
    release = load_config(write(tmp_path, MINIMAL)).release
    assert (release.checks, release.steps, release.attempts, release.lock_timeout_minutes) == ((), (100,), 10, 30)


def test_release_checks_and_steps_come_from_the_release_table_and_environments_override_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + "[release]\nsteps = [10, 50, 100]\nstep_wait_seconds = 5\n"
        + '[[release.checks]]\npath = "/docs"\ncontains = "Swagger"\n'
        + '[[release.checks]]\npath = "/auth/me"\nstatus = 401\n'
        + "[environments.staging.release]\nsteps = [100]\n",
    )
    release = load_config(path).release
    assert release.steps == (10, 50, 100)
    assert release.step_wait_seconds == 5
    assert release.checks == (SmokeCheck("/docs", 200, "Swagger"), SmokeCheck("/auth/me", 401))
    assert [str(c) for c in release.checks] == ["GET /docs -> 200 containing 'Swagger'", "GET /auth/me -> 401"]
    staging = load_config(path, env="staging").release
    assert (staging.steps, staging.checks) == ((100,), release.checks)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            "steps = [50, 10, 100]",
            "release.steps = [50, 10, 100] is not valid: use rising percentages from 1 to 100 that end at 100, "
            "such as [10, 50, 100]",
        ),
        (
            "steps = [10, 50]",
            "release.steps = [10, 50] is not valid: use rising percentages from 1 to 100 that end at 100, "
            "such as [10, 50, 100]",
        ),
        ("attempts = 0", "release.attempts = 0 is not valid: use a whole number from 1 to 60"),
        (
            "stepz = [100]",
            "unknown key release.stepz (allowed: checks, steps, step_wait_seconds, attempts, lock_timeout_minutes, "
            "invoker_account)",
        ),
        (
            '[[release.checks]]\npath = "docs"',
            "release.checks #1: path = 'docs' is not valid: use a path from the root such as /docs",
        ),
        (
            '[[release.checks]]\npath = "/"\nstatus = 99',
            "release.checks #1: status = 99 is not valid: use an HTTP status such as 200",
        ),
        (
            '[[release.checks]]\npath = "/"\nbody = "x"',
            "release.checks #1 has unknown keys body (allowed: path, status, contains)",
        ),
    ],
)
def test_release_mistakes_are_named_with_what_is_allowed(tmp_path: Path, table: str, problem: str) -> None:
    assert problems(tmp_path, MINIMAL + "[release]\n" + table + "\n") == [problem]


def test_without_a_build_table_remote_builds_name_no_account(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).build.service_account is None


def test_the_build_account_comes_from_the_build_table_and_an_environment_overrides_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + '[build]\nservice_account = "builder@proj-123.iam.gserviceaccount.com"\n'
        + '[environments.staging]\nname = "api-staging"\n'
        + '[environments.staging.build]\nservice_account = "123456789012-compute@developer.gserviceaccount.com"\n'
        + '[environments.prod]\nname = "api-prod"\n',
    )
    assert load_config(path).build.service_account == "builder@proj-123.iam.gserviceaccount.com"
    staging = load_config(path, env="staging")
    assert staging.build.service_account == "123456789012-compute@developer.gserviceaccount.com"
    assert staging.service_account is None  # the build's account is not the runtime's
    assert load_config(path, env="prod").build.service_account == "builder@proj-123.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("text", "env", "problem"),
    [
        (
            MINIMAL + '[build]\nservice_account = "builder"\n',
            None,
            "build.service_account = 'builder' is not a service account email "
            "(NAME@PROJECT.iam.gserviceaccount.com, or PROJECT_NUMBER-compute@developer.gserviceaccount.com)",
        ),
        (
            # The resource name Cloud Build's API takes is doki's to make: doki.toml holds the email.
            MINIMAL
            + '[build]\nservice_account = "projects/proj-123/serviceAccounts/b@proj-123.iam.gserviceaccount.com"\n',
            None,
            "build.service_account = 'projects/proj-123/serviceAccounts/b@proj-123.iam.gserviceaccount.com' "
            "is not a service account email "
            "(NAME@PROJECT.iam.gserviceaccount.com, or PROJECT_NUMBER-compute@developer.gserviceaccount.com)",
        ),
        (
            MINIMAL + "[build]\nserviceAccount = 1\n",
            None,
            "unknown key build.serviceAccount (allowed: service_account)",
        ),
        ('build = "builder"\n' + MINIMAL, None, "build must be a table: [build] with service_account"),
        (
            MINIMAL + '[environments.staging]\nname = "s"\n[environments.staging.build]\nservice_account = 3\n',
            "staging",
            "build.service_account = 3 is not a service account email "
            "(NAME@PROJECT.iam.gserviceaccount.com, or PROJECT_NUMBER-compute@developer.gserviceaccount.com)",
        ),
    ],
)
def test_build_mistakes_are_named_with_what_is_allowed(
    tmp_path: Path, text: str, env: str | None, problem: str
) -> None:
    assert problems(tmp_path, text, **({"env": env} if env else {})) == [problem]


def test_an_unknown_table_names_the_allowed_ones(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + "[builds]\nservice_account = 1\n") == [
        "unknown table [builds] (allowed: [service], [release], [build], [monitoring], [preview], [environments.NAME])"
    ]


@pytest.mark.parametrize(
    ("override", "message", "hint"),
    [
        (
            {"project": "WRONG_Proj"},
            "--project (DOKI_PROJECT) 'WRONG_Proj' is not a Google Cloud project id",
            "use the project's id, such as my-project-123: `gcloud projects list` shows them",
        ),
        (
            {"region": "mars"},
            "--region (DOKI_REGION) 'mars' is not a Cloud Run region",
            "use a region such as us-central1 or europe-west1: `gcloud run regions list` shows them",
        ),
    ],
)
def test_a_bad_override_is_blamed_on_the_option_not_the_file(
    tmp_path: Path, override: dict[str, str], message: str, hint: str
) -> None:
    with pytest.raises(DokiError) as failed:
        load_config(write(tmp_path, MINIMAL), **override)
    assert (failed.value.code, failed.value.message, failed.value.hint) == ("bad_option", message, hint)


def test_the_compute_default_account_is_accepted_by_name(tmp_path: Path) -> None:
    account = "123456789012-compute@developer.gserviceaccount.com"

    config = load_config(write(tmp_path, MINIMAL + f'service_account = "{account}"\n'))

    assert config.service_account == account


def kept(
    cpu: str | None = None,
    memory: str | None = None,
    *,
    always: bool = False,
    gen2: bool = False,
    sidecars: float = 0.0,
) -> list[str]:
    return kept_setting_problems(
        cpu=cpu, memory=memory, cpu_always_allocated=always, gen2=gen2, sidecar_cpus=sidecars, service="api"
    )


def test_cpu_below_one_is_refused_only_with_cpu_always_allocated_or_gen2_and_counts_the_sidecars() -> None:
    assert kept("0.5") == kept("500m") == []  # first generation, CPU only during requests: Cloud Run accepts it
    assert kept("1", always=True, gen2=True) == kept("1000m", gen2=True) == []
    assert kept(None, "128Mi", always=True, gen2=False) == []  # unchanged CPU: the live revision runs with it
    assert kept("500m", always=True) == [
        "cpu 500m is below 1, which Cloud Run refuses while the service has CPU always allocated: use cpu 1 or more, "
        "or allocate CPU only during requests (gcloud run services update api --cpu-throttling)"
    ]
    assert kept("0.5", gen2=True)[0].startswith("cpu 0.5 is below 1, which Cloud Run refuses in the second generation")
    assert kept("0.5", always=True, sidecars=0.5) == []  # one CPU in all
    assert kept("0.25", always=True, sidecars=0.5)[0].startswith("cpu 0.25 (0.75 with the other containers) is below")


def test_memory_below_512_mebibytes_is_refused_in_the_second_generation_only() -> None:
    assert kept(memory="256Mi") == kept(memory="512Mi", gen2=True) == kept(memory="1Gi", gen2=True) == []
    assert kept(memory="512M", gen2=True) == [  # 512 MB is less than 512 MiB
        "memory 512M is below 512Mi, the least the second generation execution environment the service runs in "
        "allows: use 512Mi or more, or the first generation (gcloud run services update api --execution-environment "
        "gen1)"
    ]


def test_release_invoker_account_is_a_service_account_email(tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text(
        '[service]\nname = "api"\nproject = "proj-1"\n[release]\n'
        'invoker_account = "release-checks@proj-1.iam.gserviceaccount.com"\n'
    )
    assert (
        load_config(tmp_path / "doki.toml").release.invoker_account == "release-checks@proj-1.iam.gserviceaccount.com"
    )
    (tmp_path / "doki.toml").write_text(
        '[service]\nname = "api"\nproject = "proj-1"\n[release]\ninvoker_account = "me"\n'
    )
    with pytest.raises(DokiError) as bad:
        load_config(tmp_path / "doki.toml")
    assert "release.invoker_account = 'me' is not a service account email" in bad.value.message


FULL_SETTINGS = """cpu_idle = false
startup_cpu_boost = false
execution_environment = "gen2"
session_affinity = true
labels = { team = "core" }
cloudsql_instances = ["main-db", "other-proj:europe-west1:reports"]

[service.vpc]
connector = "egress"

[[service.volumes]]
name = "cache"
type = "in-memory"
mount_path = "/cache"
size_limit = "256Mi"

[[service.volumes]]
name = "shared"
type = "nfs"
location = "10.0.0.2:/exports/shared"
mount_path = "/mnt/shared"
read_only = true

[service.startup_probe]
type = "http"
path = "/"
period_seconds = 5
failure_threshold = 24

[service.liveness_probe]
type = "grpc"
service = "health"
port = 50051
"""


def test_cloud_run_settings_are_read_as_declared_and_short_names_made_whole(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL + FULL_SETTINGS)).settings
    assert settings == RunSettings(
        cpu_idle=False,
        startup_cpu_boost=False,
        execution_environment="gen2",
        session_affinity=True,
        labels={"team": "core"},
        # A bare instance and connector are the service's project and region's, as gcloud reads them.
        vpc=Vpc(connector="projects/proj-123/locations/us-central1/connectors/egress", egress="private-ranges-only"),
        cloudsql_instances=("proj-123:us-central1:main-db", "other-proj:europe-west1:reports"),
        volumes=(
            Volume("cache", "in-memory", "/cache", size_limit="256Mi"),
            Volume("shared", "nfs", "/mnt/shared", location="10.0.0.2:/exports/shared", read_only=True),
        ),
        startup_probe=Probe("http", path="/", period_seconds=5, failure_threshold=24),
        liveness_probe=Probe("grpc", port=50051, service="health"),
    )


def test_settings_left_out_are_none_so_a_deploy_keeps_what_the_service_has(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).settings == RunSettings()


def test_an_environment_adds_labels_and_replaces_a_whole_table(tmp_path: Path) -> None:
    text = MINIMAL + 'labels = { team = "core", tier = "api" }\n[service.vpc]\nnetwork = "default"\n'
    text += '[environments.prod]\nlabels = { tier = "prod" }\nvpc = { connector = "prod-egress" }\n'
    settings = load_config(write(tmp_path, text), env="prod").settings
    assert settings.labels == {"team": "core", "tier": "prod"}
    assert settings.vpc == Vpc(
        connector="projects/proj-123/locations/us-central1/connectors/prod-egress", egress="private-ranges-only"
    )


def test_a_liveness_probe_set_to_false_is_none_and_an_empty_vpc_table_is_no_vpc_access(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL + "liveness_probe = false\nvpc = {}\n")).settings
    assert (settings.liveness_probe, settings.vpc) == (NO_PROBE, Vpc())


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('cpu_idle = "no"', "cpu_idle = 'no' is not valid: use true or false"),
        ('execution_environment = "gen3"', "execution_environment = 'gen3' is not valid: use gen1 or gen2"),
        (
            'cpu = "0.5"\nconcurrency = 1\ncpu_idle = false',
            "cpu_idle = false (CPU always allocated) needs cpu 1 or more (cpu is 0.5)",
        ),
        (
            'cpu = "0.5"\nconcurrency = 1\nexecution_environment = "gen2"',
            'execution_environment = "gen2" needs cpu 1 or more (cpu is 0.5)',
        ),
        (
            'memory = "256Mi"\nexecution_environment = "gen2"',
            'execution_environment = "gen2" needs memory 512Mi or more',
        ),
        (
            'labels = { Team = "core" }',
            "labels key 'Team' is not valid: start with a lowercase letter; lowercase letters, "
            "digits, _ and -, at most 63",
        ),
        (
            'labels = { team = "Core Team" }',
            "labels team = 'Core Team' is not valid: use a string of lowercase letters, digits, _ and -, at most 63",
        ),
        (
            '[service.vpc]\nconnector = "c1"\nnetwork = "default"',
            "vpc names a connector and a network or subnet: use one, a connector or Direct VPC egress, not both",
        ),
        (
            '[service.vpc]\negress = "all-traffic"',
            "vpc.egress and vpc.network_tags need vpc.connector, or vpc.network or vpc.subnet",
        ),
        (
            '[service.vpc]\nnetwork = "default"\negress = "everything"',
            "vpc.egress = 'everything' is not valid: use all-traffic or private-ranges-only",
        ),
        (
            '[service.vpc]\nconector = "c1"',
            "unknown key vpc.conector (allowed: connector, network, subnet, network_tags, egress)",
        ),
        (
            'cloudsql_instances = ["proj:db"]',
            "cloudsql_instances: 'proj:db' is not a Cloud SQL connection name: use "
            "PROJECT:REGION:INSTANCE (`gcloud sql instances describe NAME` shows it as connectionName)",
        ),
        (
            '[[service.volumes]]\nname = "c"\ntype = "tmpfs"\nmount_path = "/c"',
            "volumes #1: type = 'tmpfs' is not valid: use one of in-memory, cloud-storage, nfs, secret",
        ),
        (
            '[[service.volumes]]\nname = "b"\ntype = "cloud-storage"\nmount_path = "/b"',
            "volumes #1 (cloud-storage) needs bucket",
        ),
        (
            '[[service.volumes]]\nname = "p"\ntype = "in-memory"\nmount_path = "/proc/x"',
            "volumes #1: mount_path /proc/x is not allowed: Cloud Run mounts nothing at or under /dev, /proc or /sys",
        ),
        (
            '[[service.volumes]]\nname = "n"\ntype = "nfs"\nlocation = "server"\nmount_path = "/n"',
            "volumes #1: location = 'server' is not valid: use SERVER:/PATH",
        ),
        (
            'execution_environment = "gen1"\n[[service.volumes]]\nname = "n"\ntype = "nfs"\nlocation '
            '= "s:/e"\nmount_path = "/n"',
            "nfs volumes need the second generation execution environment: set execution_environment "
            '= "gen2" (or leave it out)',
        ),
        (
            '[[service.volumes]]\nname = "c"\ntype = "in-memory"\nmount_path = "/cloudsql"',
            "volumes #1: mount_path /cloudsql is where Cloud Run mounts Cloud SQL: use another path",
        ),
        (
            '[[service.volumes]]\nname = "cloudsql"\ntype = "in-memory"\nmount_path = "/db"',
            "volumes #1: name 'cloudsql' is Cloud Run's for Cloud SQL: use cloudsql_instances for that, or another "
            "name",
        ),
        (
            '[service.vpc]\nsubnet = "projects/p/global/subnetworks/s"',
            "vpc.subnet = 'projects/p/global/subnetworks/s' is not valid: use its name (lowercase letters, digits and "
            "-, starting with a letter, at most 63) or its resource name",
        ),
        (
            '[service.liveness_probe]\ntype = "tcp"',
            "liveness_probe.type = 'tcp' is not valid: use http or grpc (Cloud Run's liveness probes are not TCP)",
        ),
        (
            "startup_probe = false",
            'startup_probe must be a table ([service.startup_probe] with type = "http", path = "/")',
        ),
        (
            '[service.startup_probe]\ntype = "tcp"\nperiod_seconds = 30\nfailure_threshold = 10',
            "startup_probe: failure_threshold * period_seconds is 300 seconds, above the 240 Cloud "
            "Run allows a startup probe",
        ),
        (
            '[service.startup_probe]\ntype = "tcp"\ntimeout_seconds = 20',
            "startup_probe.timeout_seconds (20) is above period_seconds (10): a probe times out "
            "before the next one starts",
        ),
        (
            '[service.liveness_probe]\ntype = "http"\ninitial_delay_seconds = 4000',
            "liveness_probe.initial_delay_seconds = 4000 is not valid: use a whole number from 0 to 3600",
        ),
    ],
)
def test_each_mistake_in_a_cloud_run_setting_is_named_with_what_is_allowed(
    tmp_path: Path, extra: str, problem: str
) -> None:
    assert problems(tmp_path, MINIMAL + extra + "\n") == [problem]


def test_without_a_monitoring_table_nothing_is_declared(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).monitoring == MonitoringSettings()
    assert MonitoringSettings().declared is False


def test_monitoring_is_read_with_its_defaults_and_an_environment_overrides_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + '[monitoring]\nemails = ["ops@example.com"]\nmax_p95_latency_ms = false\nalert_after = "10m"\n'
        + '[environments.staging]\nname = "api-staging"\n'
        + '[environments.staging.monitoring]\nemails = []\nuptime_period = "15m"\nmax_5xx_ratio = 0.2\n',
    )
    assert load_config(path).monitoring == MonitoringSettings(
        declared=True,
        emails=("ops@example.com",),
        uptime_period_seconds=60,
        uptime_timeout_seconds=10,
        max_5xx_ratio=0.05,
        max_p95_latency_ms=None,
        alert_after_seconds=600,
    )
    staging = load_config(path, env="staging").monitoring
    assert (staging.emails, staging.uptime_period_seconds, staging.max_5xx_ratio) == ((), 900, 0.2)
    assert (staging.max_p95_latency_ms, staging.alert_after_seconds) == (None, 600)  # the rest from [monitoring]
    only_staging = write(tmp_path, MINIMAL + '[environments.s]\nname = "api-s"\n[environments.s.monitoring]\n')
    assert load_config(only_staging, env="s").monitoring.declared is True
    assert load_config(only_staging).monitoring.declared is False


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('emails = "ops@example.com"', "monitoring.emails = 'ops@example.com' is not valid: use a list of addresses"),
        ('emails = ["not an address"]', "monitoring.emails = ['not an address'] is not valid"),
        ('emails = ["a@b.co", "a@b.co"]', "monitoring.emails = ['a@b.co', 'a@b.co'] names an address twice"),
        ('uptime_period = "2m"', 'monitoring.uptime_period = \'2m\' is not valid: use "1m", "5m", "10m" or "15m"'),
        ('uptime_timeout = "90s"', 'monitoring.uptime_timeout = \'90s\' is not valid: use from "1s" to "60s"'),
        ("uptime_timeout = 10", 'monitoring.uptime_timeout = 10 is not valid: use from "1s" to "60s"'),
        ('uptime_period = "1m"\nuptime_timeout = "59s"', None),
        ('alert_after = "90s"', "monitoring.alert_after = '90s' is not valid: use whole minutes"),
        ("max_5xx_ratio = 5", "monitoring.max_5xx_ratio = 5 is not valid: use a share between 0 and 1"),
        ("max_5xx_ratio = true", "monitoring.max_5xx_ratio = True is not valid"),
        ("max_p95_latency_ms = 0", "monitoring.max_p95_latency_ms = 0 is not valid: use whole milliseconds"),
        ("thresholds = 1", "unknown key monitoring.thresholds (allowed: emails, uptime_period, uptime_timeout"),
    ],
)
def test_monitoring_mistakes_are_named_with_what_is_allowed(tmp_path: Path, table: str, problem: str | None) -> None:
    text = MINIMAL + "[monitoring]\n" + table + "\n"
    if problem is None:
        assert load_config(write(tmp_path, text)).monitoring.uptime_timeout_seconds == 59
        return
    (found,) = problems(tmp_path, text)
    assert found.startswith(problem)
