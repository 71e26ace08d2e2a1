"""The planner and the edit executor on the in-memory double of Cloud Run and Secret Manager (tests/fakes/deploy.py):
what a plan lists for each difference between doki.toml and the live service, that planning writes nothing, and
that an edit writes its one change and keeps everything else. No emulator, no containers: each test takes
milliseconds. `test_planner.py` and `test_executor.py` check the same core against the emulator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from doki_cli.config import SecretRef
from doki_cli.deploy.executor import apply_edit, plan_lines
from doki_cli.deploy.planner import (
    Change,
    Plan,
    Planner,
    plan_env,
    plan_pin,
    plan_scaling,
    read_live,
    refuse_what_cloud_run_would,
)
from doki_cli.errors import DokiError
from doki_cli.model import Edit, Kept, LiveService, Probe, RunSettings, Scaling, ServiceSpec, Volume, Vpc, pinned
from tests.fakes.deploy import FakeCloudRun, FakeSecretManager, Write
from tests.helpers.deploy_core import ACCOUNT, IMAGE, MEMBER, deployed, doki_toml, execute, plan, quiet

NEWER = "us-central1-docker.pkg.dev/doki-test/doki/api:2222222"
REDIRECT = "https://api-h4sh-uc.a.run.app/auth/google/callback"


def doki_toml_spec() -> ServiceSpec:
    """What a deploy of `doki_toml()` wrote, its secret pinned to version 1."""
    return ServiceSpec(
        image=IMAGE,
        port=8080,
        memory="512Mi",
        cpu="1",
        concurrency=80,
        timeout_seconds=300,
        min_instances=0,
        max_instances=10,
        ingress="all",
        service_account=ACCOUNT,
        env={"LOG_LEVEL": "info"},
        secrets={"API_KEY": "api-key:1"},
    )


@pytest.fixture
def run() -> FakeCloudRun:
    return FakeCloudRun()


@pytest.fixture
def secrets() -> FakeSecretManager:
    secrets = FakeSecretManager()
    secrets.add("api-key", "enabled", readers=[MEMBER])
    return secrets


def stuck(run: FakeCloudRun) -> str:
    """A new revision of api's template, made by someone else, that never became Ready; its name."""
    run.fail_next_revision("container exited with code 78")
    with run.by_someone_else(), pytest.raises(DokiError):
        run.update("api", lambda _: Edit(new_revision=True), on_progress=quiet)
    failed = read_live(run, "api").stuck
    assert failed is not None
    return failed


def test_a_service_that_is_what_doki_toml_says_plans_no_changes_and_planning_writes_nothing(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    live = deployed(run, secrets, doki_toml())

    planned = plan(run, secrets, doki_toml())

    assert planned.empty and planned.changes == [] and planned.grants == []
    assert planned.live == live
    assert (planned.unmanaged, planned.keep_env) == ([], ())
    assert planned.desired.env == {"LOG_LEVEL": "info", "GOOGLE_REDIRECT_URI": REDIRECT}
    assert plan_lines(planned)[-1] == ("No changes.", None)
    assert run.writes == [] and secrets.granted == []


def test_every_field_doki_toml_changes_is_one_change_from_the_live_value_to_the_new(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    changed = doki_toml(
        port=9000,
        memory="1Gi",
        cpu="2",
        concurrency=40,
        timeout_seconds=60,
        min_instances=1,
        max_instances=3,
        ingress="internal",
        env={"LOG_LEVEL": "debug", "FEATURE": "on"},
    )

    planned = plan(run, secrets, changed, NEWER)

    assert planned.changes == [
        Change("image", IMAGE, NEWER),
        Change("port", "8080", "9000"),
        Change("memory", "512Mi", "1Gi"),
        Change("cpu", "1", "2"),
        Change("concurrency", "80", "40"),
        Change("timeout", "300", "60"),
        Change("min instances", "0", "1"),
        Change("max instances", "10", "3"),
        Change("ingress", "all", "internal"),
        Change("env LOG_LEVEL", "info", "debug"),
        Change("env FEATURE", None, "on"),
    ]
    assert planned.makes_revision and run.writes == []

    execute(run, secrets, planned)

    assert plan(run, secrets, changed, NEWER).empty  # deployed, doki.toml and the service agree again


def test_variables_doki_toml_does_not_declare_are_listed_and_kept_through_a_deploy(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    with run.by_someone_else():  # gcloud run services update --update-env-vars
        run.update("api", lambda _: Edit(env={"SENTRY_DSN": "https://sentry.example"}), on_progress=quiet)

    planned = plan(run, secrets, doki_toml(), NEWER)
    execute(run, secrets, planned)

    assert (planned.unmanaged, planned.keep_env) == (["SENTRY_DSN"], ("SENTRY_DSN",))
    assert planned.changes == [Change("image", IMAGE, NEWER)]
    assert "  = not managed by doki.toml, kept: SENTRY_DSN (`doki deploy --prune` removes them)" in [
        t for t, _ in plan_lines(planned)
    ]
    live = read_live(run, "api")
    assert live.spec.env["SENTRY_DSN"] == "https://sentry.example"
    assert live.variables == ("LOG_LEVEL", "API_KEY", "GOOGLE_REDIRECT_URI", "SENTRY_DSN")


def test_with_prune_variables_doki_toml_does_not_declare_are_planned_away_and_removed(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    with run.by_someone_else():
        run.update("api", lambda _: Edit(env={"SENTRY_DSN": "https://sentry.example"}), on_progress=quiet)

    planned = Planner(run, secrets).plan(doki_toml(), IMAGE, prune=True)
    execute(run, secrets, planned)

    assert planned.changes == [Change("env SENTRY_DSN", "https://sentry.example", None)]
    assert planned.keep_env == ()
    assert read_live(run, "api").variables == ("LOG_LEVEL", "API_KEY", "GOOGLE_REDIRECT_URI")


def test_a_secret_is_pinned_to_the_number_of_its_latest_enabled_version(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    secrets.add("api-key", "enabled", "enabled", readers=[MEMBER])  # doki secrets push: version 2

    latest = plan(run, secrets, doki_toml())
    pinned_one = plan(run, secrets, doki_toml(secrets={"API_KEY": SecretRef("api-key", "1")}))

    assert latest.desired.secrets == {"API_KEY": "api-key:2"}
    assert latest.changes == [Change("secret API_KEY", "api-key:1", "api-key:2")]
    assert pinned_one.empty  # version 1 is what the live revision reads already


def test_a_secret_that_does_not_exist_is_refused_before_anything_is_written(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    config = doki_toml(secrets={"API_KEY": SecretRef("api-key"), "DB_PASSWORD": SecretRef("db-password")})

    with pytest.raises(DokiError) as refused:
        plan(run, secrets, config)

    assert (refused.value.code, refused.value.exit_code) == ("secret_missing", 78)
    assert refused.value.message == "DB_PASSWORD uses the secret db-password, which does not exist in project doki-test"
    assert refused.value.hint == "create it with `doki secrets push` (values from .env), then deploy again"
    assert run.writes == [] and secrets.granted == []


def test_a_secret_the_release_pushes_first_is_planned_as_its_version_1_with_access_to_grant(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    config = doki_toml(secrets={"API_KEY": SecretRef("api-key"), "DB_PASSWORD": SecretRef("db-password")})

    planned = Planner(run, secrets).plan(config, IMAGE, pushes_secrets=True)

    assert planned.desired.secrets == {"API_KEY": "api-key:1", "DB_PASSWORD": "db-password:1"}
    assert planned.changes == [Change("secret DB_PASSWORD", None, "db-password:1")]
    assert (planned.grants, planned.member) == (["db-password"], MEMBER)
    assert f"  + grant {MEMBER} access to secret db-password" in [text for text, _ in plan_lines(planned)]
    assert run.writes == [] and secrets.granted == []


def test_a_revision_that_never_became_ready_is_planned_as_a_retry_which_makes_a_new_one(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    failed = stuck(run)

    planned = plan(run, secrets, doki_toml())

    assert planned.changes == [Change("revision", f"{failed} (not ready)", "a new revision")]
    assert planned.retries_revision and planned.makes_revision
    assert planned.repeats_failure  # the same image and settings as the revision that failed
    assert planned.warnings == [
        f"{IMAGE} is the image {failed} failed with (Revision '{failed}' is not ready and cannot serve traffic. "
        "container exited with code 78)"
    ]

    execute(run, secrets, planned)

    live = read_live(run, "api")
    assert live.latest_ready == live.latest_created != failed
    assert [w.new_revision for w in run.writes if w.call == "apply"] == [True]
    assert plan(run, secrets, doki_toml()).empty


def test_traffic_a_rollback_pinned_is_planned_back_to_latest_without_a_new_revision(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    old = deployed(run, secrets, doki_toml()).latest_ready
    assert old is not None
    deployed(run, secrets, doki_toml(), NEWER)
    with run.by_someone_else():  # doki rollback
        run.update("api", lambda live: Edit(traffic=pinned(live.traffic, old)), on_progress=quiet)
    revisions = len(run.revisions("api"))

    planned = plan(run, secrets, doki_toml(), NEWER)
    execute(run, secrets, planned)

    assert planned.changes == [Change("traffic", f"100% {old}", "100% latest")]
    assert not planned.makes_revision
    live = read_live(run, "api")
    assert live.traffic_to_latest and live.shares == {live.latest_ready: 100}
    assert len(run.revisions("api")) == revisions


def test_who_may_invoke_the_service_is_a_change_of_its_own_and_written_as_one(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())

    private = plan(run, secrets, doki_toml(allow_unauthenticated=False))
    no_check = plan(run, secrets, doki_toml(invoker_iam_check=False))
    execute(run, secrets, private)

    assert private.changes == [Change("invoker", "allUsers (public)", "authenticated callers only")]
    assert not private.makes_revision
    assert no_check.changes == [Change("invoker", "allUsers (public)", "anyone (invoker IAM check off)")]
    assert no_check.writes_invoker_check and not no_check.binding
    assert [w.call for w in run.writes] == ["set_public"] and not run.is_public("api")


def test_plan_env_lists_the_variable_it_sets_and_nothing_when_it_has_that_value(run: FakeCloudRun) -> None:
    live = run.add_service("api", doki_toml_spec())

    added = plan_env(run, live, "ALLOWED_ORIGINS", "https://app.example")
    same = plan_env(run, live, "LOG_LEVEL", "info")

    assert added.changes == [Change("env ALLOWED_ORIGINS", None, "https://app.example")]
    assert added.edit == Edit(env={"ALLOWED_ORIGINS": "https://app.example"})
    assert same.empty and same.edit is None
    assert run.writes == []


def test_plan_env_retries_a_revision_that_never_became_ready_even_when_the_value_is_the_same(
    run: FakeCloudRun,
) -> None:
    run.add_service("api", doki_toml_spec())
    failed = stuck(run)

    planned = plan_env(run, read_live(run, "api"), "LOG_LEVEL", "info")

    assert planned.changes == [Change("revision", f"{failed} (not ready)", "a new revision")]
    assert planned.edit == Edit(env={"LOG_LEVEL": "info"}, new_revision=True)


def test_plan_scaling_lists_the_values_that_change_and_nothing_for_the_same_values(run: FakeCloudRun) -> None:
    live = run.add_service("api", doki_toml_spec())

    changed = plan_scaling(run, live, Scaling(min_instances=1, max_instances=10, memory="1Gi"))
    same = plan_scaling(run, live, Scaling(min_instances=0, cpu="1"))

    assert changed.changes == [Change("min instances", "0", "1"), Change("memory", "512Mi", "1Gi")]
    assert changed.edit == Edit(scaling=Scaling(min_instances=1, max_instances=10, memory="1Gi"))
    assert same.empty and same.edit is None


def test_plan_scaling_retries_a_revision_that_never_became_ready(run: FakeCloudRun) -> None:
    run.add_service("api", doki_toml_spec())
    failed = stuck(run)

    planned = plan_scaling(run, read_live(run, "api"), Scaling(min_instances=0))

    assert planned.changes == [Change("revision", f"{failed} (not ready)", "a new revision")]
    assert planned.edit == Edit(scaling=Scaling(min_instances=0), new_revision=True)


def test_plan_scaling_refuses_values_cloud_run_would_refuse(run: FakeCloudRun) -> None:
    live = run.add_service("api", doki_toml_spec(), cpu_always_allocated=True)

    with pytest.raises(DokiError) as inverted:
        plan_scaling(run, live, Scaling(min_instances=5, max_instances=2))
    with pytest.raises(DokiError) as throttled:
        plan_scaling(run, live, Scaling(cpu="0.5"))

    assert inverted.value.code == "bad_scale"
    assert inverted.value.message == "max instances 2 is below min instances 5; nothing was changed"
    assert throttled.value.code == "bad_scale"
    assert "cpu 0.5 is below 1, which Cloud Run refuses while the service has CPU always allocated" in (
        throttled.value.message
    )
    assert run.writes == []


def test_plan_pin_moves_all_traffic_to_a_revision_and_nothing_when_it_serves_all_already(
    run: FakeCloudRun,
) -> None:
    old = run.add_service("api", doki_toml_spec()).latest_ready
    assert old is not None
    with run.by_someone_else():
        run.update("api", lambda _: Edit(env={"LOG_LEVEL": "debug"}), on_progress=quiet)
    live = read_live(run, "api")
    revisions = run.revisions("api")

    back = plan_pin(run, live, revisions, old)
    serving = plan_pin(run, live, revisions, str(live.latest_ready))

    assert back.changes == [Change("traffic", "100% latest", f"100% {old}")]
    assert back.pin == old and back.edit is None
    assert serving.empty


def test_apply_edit_writes_the_one_variable_and_keeps_everything_else(run: FakeCloudRun) -> None:
    before = run.add_service("api", doki_toml_spec())

    after = apply_edit(run, plan_env(run, before, "ALLOWED_ORIGINS", "https://app.example"), on_progress=quiet)

    assert run.writes == [Write("update", "api", edit=Edit(env={"ALLOWED_ORIGINS": "https://app.example"}))]
    assert after.spec == replace(before.spec, env={**before.spec.env, "ALLOWED_ORIGINS": "https://app.example"})
    assert after.variables == (*before.variables, "ALLOWED_ORIGINS")
    assert (after.traffic, after.annotations) == (before.traffic, before.annotations)
    assert after.latest_ready == after.latest_created != before.latest_created  # a new revision, serving
    assert after.generation == before.generation + 1 and after.etag != before.etag


def test_apply_edit_writes_the_scaling_and_keeps_everything_else(run: FakeCloudRun) -> None:
    before = run.add_service("api", doki_toml_spec())

    after = apply_edit(run, plan_scaling(run, before, Scaling(max_instances=3, cpu="2")), on_progress=quiet)

    assert run.writes == [Write("update", "api", edit=Edit(scaling=Scaling(max_instances=3, cpu="2")))]
    assert after.spec == replace(before.spec, max_instances=3, cpu="2")
    assert after.variables == before.variables and after.traffic == before.traffic
    assert after.latest_created != before.latest_created


def test_apply_edit_of_a_pin_moves_traffic_only_and_makes_no_revision(run: FakeCloudRun) -> None:
    old = run.add_service("api", doki_toml_spec()).latest_ready
    assert old is not None
    with run.by_someone_else():
        run.update("api", lambda _: Edit(env={"LOG_LEVEL": "debug"}), on_progress=quiet)
    before = read_live(run, "api")

    after = apply_edit(run, plan_pin(run, before, run.revisions("api"), old), on_progress=quiet)

    assert run.writes == [Write("update", "api", edit=Edit(traffic=pinned(before.traffic, old)))]
    assert after.shares == {old: 100} and after.traffic_text == f"100% {old}"
    assert (after.spec, after.latest_created) == (before.spec, before.latest_created)


def test_a_change_to_a_service_that_is_not_there_says_so(run: FakeCloudRun) -> None:
    with pytest.raises(DokiError) as missing:
        read_live(run, "api")

    assert missing.value.code == "service_not_found"
    assert missing.value.message == "projects/doki-test/locations/us-central1/services/api does not exist"


def test_a_declared_cloud_run_setting_is_one_change_and_a_setting_left_out_is_no_change(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    declared = RunSettings(session_affinity=True, labels={"team": "core"}, cpu_idle=True)

    planned = plan(run, secrets, doki_toml(settings=declared))

    # cpu_idle is what the service has already; everything not declared (the probes, VPC, volumes) is no change.
    assert planned.changes == [
        Change("session_affinity", "false", "true"),
        Change("labels", "none", "team=core"),
    ]
    assert planned.makes_revision


def test_settings_written_by_a_deploy_read_back_as_declared_so_the_next_plan_is_empty(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml())
    declared = RunSettings(
        vpc=Vpc(connector="projects/doki-test/locations/us-central1/connectors/c", egress="all-traffic"),
        liveness_probe=Probe("http", path="/healthz"),
    )
    execute(run, secrets, plan(run, secrets, doki_toml(settings=declared)))

    again = plan(run, secrets, doki_toml(settings=declared))

    assert again.empty
    # Left out again, they stay as the deploy wrote them.
    assert plan(run, secrets, doki_toml()).empty
    assert read_live(run, "api").spec.settings.liveness_probe == Probe("http", path="/healthz")


def test_a_setting_the_live_service_has_is_said_kept_until_doki_toml_declares_it() -> None:
    live_kept = (Kept("session affinity", "session_affinity"), Kept("sidecar collector"))
    spec = doki_toml_spec()
    live = LiveService("api", spec, "https://api", "e", 1, None, (), (), {}, None, None, True, "", kept=live_kept)
    keeping = Plan("api", "projects/p/locations/l/services/api", spec, live, ())
    declaring = replace(keeping, desired=replace(spec, settings=RunSettings(session_affinity=True)))

    assert keeping.kept == ["session affinity", "sidecar collector"]
    assert declaring.kept == ["sidecar collector"]


def test_an_nfs_volume_on_a_service_running_in_the_first_generation_is_refused_before_any_write(
    run: FakeCloudRun, secrets: FakeSecretManager
) -> None:
    deployed(run, secrets, doki_toml(settings=RunSettings(execution_environment="gen1")))
    nfs = Volume("shared", "nfs", "/mnt/shared", location="10.0.0.2:/exports")
    writes = list(run.writes)

    with pytest.raises(DokiError) as refused:
        plan(run, secrets, doki_toml(settings=RunSettings(volumes=(nfs,))))

    assert refused.value.code == "refused_by_cloud_run"
    assert refused.value.message == (
        "Cloud Run would refuse the new revision of api: nfs volumes need the second generation execution "
        'environment, and the service runs in the first (gen1): set execution_environment = "gen2" in doki.toml; '
        "nothing was changed"
    )
    assert run.writes == writes


def test_a_declared_volume_named_as_a_sidecars_own_is_refused_before_any_write() -> None:
    spec = doki_toml_spec()
    live = LiveService(
        "api", spec, "https://api", "e", 1, None, (), (), {}, None, None, True, "", sidecar_volumes=("spool",)
    )
    spool = Volume("spool", "in-memory", "/spool")

    with pytest.raises(DokiError) as refused:
        refuse_what_cloud_run_would(doki_toml(settings=RunSettings(volumes=(spool,))), live)

    assert refused.value.code == "refused_by_cloud_run"
    assert "volume spool is a sidecar's (the serving container does not mount it): name doki.toml's volume " in (
        refused.value.message
    )
