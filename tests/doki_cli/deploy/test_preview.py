"""The preview core (doki_cli/deploy/preview.py) on the in-memory Cloud Run: what the staging write leaves of the
service (traffic, its own settings), the record, a release's lock, pruning, and a deploy after a preview that takes
nothing of the preview's into what serves."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from doki_cli.config import PreviewSettings
from doki_cli.deploy.lock import LOCK, Lock
from doki_cli.deploy.planner import Planner
from doki_cli.deploy.preview import PREVIEWS, Previewer, prunable, recorded, retired, with_origins
from doki_cli.errors import Code, DokiError
from doki_cli.model import Edit, Target
from tests.fakes.deploy import FakeCloudRun, FakeSecretManager
from tests.helpers.deploy_core import IMAGE, deployed, doki_toml, quiet

PREVIEW_IMAGE = IMAGE.replace("1111111", "2222222")


def world() -> tuple[FakeCloudRun, FakeSecretManager]:
    run, secrets = FakeCloudRun(), FakeSecretManager()
    secrets.add("api-key", "enabled")
    deployed(run, secrets, doki_toml())
    return run, secrets


def previewer(run: FakeCloudRun, now: float = 1_000.0) -> Previewer:
    return Previewer(run, on_progress=quiet, check=lambda url: ["GET /"], now=lambda: now)


def preview(run: FakeCloudRun, secrets: FakeSecretManager, pr: int, **config: object) -> str:
    plan = Planner(run, secrets).plan(doki_toml(**config), PREVIEW_IMAGE)
    return previewer(run).deploy(plan, f"pr-{pr}", f"pull request {pr}", "2222222abc").preview.revision


def serving(run: FakeCloudRun) -> dict[str, int]:
    live = run.get("api")
    assert live is not None
    return live.shares


def test_a_preview_tags_a_new_revision_at_no_traffic_and_records_it() -> None:
    run, secrets = world()
    before = serving(run)

    revision = preview(run, secrets, 7)

    live = run.get("api")
    assert live is not None
    assert live.shares == before  # what served still serves all of it
    assert [(t.revision, t.percent, t.tag) for t in live.traffic if t.tag] == [(revision, 0, "pr-7")]
    [made] = recorded(live).values()
    assert (made.tag, made.source, made.commit, made.revision) == ("pr-7", "pull request 7", "2222222abc", revision)
    # Previewing the pull request again moves its tag; the revision it had is retired, for a delete to prune.
    again = preview(run, secrets, 7)
    live = run.get("api")
    assert live is not None
    assert [(t.revision, t.tag) for t in live.traffic if t.tag] == [(again, "pr-7")]
    assert retired(live) == [revision]


def test_a_preview_keeps_no_instance_warm_and_leaves_the_services_own_settings_as_they_are() -> None:
    run, secrets = world()
    revision = preview(run, secrets, 3, ingress="internal", min_instances=2)
    live = run.get("api")
    assert live is not None
    assert live.spec.ingress == "all"  # the service's: a pull request cannot cut off the production URL
    [staged] = [w for w in run.writes if w.edit is not None and w.edit.staged is not None]
    assert staged.edit is not None and staged.edit.staged is not None
    assert staged.edit.staged.spec.min_instances == 0
    assert staged.edit.staged.revision == revision


def test_a_deploy_after_a_preview_takes_the_serving_revisions_variables_not_the_previews() -> None:
    run, secrets = world()
    # ALLOWED_ORIGINS set by `doki cors`, not doki.toml: a variable a deploy keeps.
    with run.by_someone_else():
        run.update("api", lambda live: Edit(env={"ALLOWED_ORIGINS": "https://app.example"}), on_progress=quiet)
    config = replace(doki_toml(), preview=PreviewSettings(origins=("https://pr-{pr}--web.example",)))
    shown = with_origins(config, {"pr": "7", "tag": "pr-7", "branch": "pr-7"}, "https://app.example")
    assert shown.env["ALLOWED_ORIGINS"] == "https://app.example,https://pr-7--web.example"
    plan = Planner(run, secrets).plan(shown, PREVIEW_IMAGE)
    previewer(run).deploy(plan, "pr-7", "pull request 7", "2222222abc")

    after = Planner(run, secrets).plan(doki_toml(), IMAGE)

    # What serves keeps its own origins: none of the preview's.
    assert after.desired.env["ALLOWED_ORIGINS"] == "https://app.example"
    assert after.keep_env == ()


def test_a_release_holding_the_service_stops_a_preview_and_its_deletion() -> None:
    run, secrets = world()
    revision = preview(run, secrets, 5)
    lock = Lock("c0ffee" * 6 + "c0ff", "other", "ci", 0, 10_000)
    with run.by_someone_else():
        run.update("api", lambda live: Edit(annotations={LOCK: lock.render()}), on_progress=quiet)
    with pytest.raises(DokiError) as caught:
        previewer(run).delete("api", "pr-5", keep=0)
    assert caught.value.code == Code.RELEASE_LOCKED
    with pytest.raises(DokiError) as staged:
        preview(run, secrets, 6)
    assert staged.value.code == Code.RELEASE_LOCKED
    live = run.get("api")
    assert live is not None and [t.tag for t in live.traffic if t.tag] == ["pr-5"]
    assert revision in [r.name for r in run.revisions("api")]


def test_deleting_a_preview_prunes_only_retired_revisions_nothing_routes_to_and_never_the_template() -> None:
    run, secrets = world()
    first = preview(run, secrets, 1)
    second = preview(run, secrets, 2)  # the template is its revision now

    removed = previewer(run).delete("api", "pr-1", keep=0)
    assert removed.deleted == [first]
    live = run.get("api")
    assert live is not None and retired(live) == []

    removed = previewer(run).delete("api", "pr-2", keep=0)
    assert removed.deleted == []  # the template's: the next deploy replaces it, then a delete prunes it
    live = run.get("api")
    assert live is not None and retired(live) == [second] and recorded(live) == {}
    assert [r.name for r in run.revisions("api") if r.percent] == list(serving(run))


def test_keep_holds_back_the_newest_retired_revisions() -> None:
    run, secrets = world()
    revisions = [preview(run, secrets, 9) for _ in range(3)]
    deployed(run, secrets, doki_toml())  # the template is doki.toml's again
    live = run.get("api")
    assert live is not None and retired(live) == revisions[:2]
    # Deleting pr-9 retires its revision too: the newest of the three is kept, the two before it go.
    assert prunable(run.revisions("api"), live, keep=1, dropping="pr-9") == [revisions[1], revisions[0]]


def test_a_tag_doki_did_not_make_is_not_taken_over() -> None:
    run, secrets = world()
    [revision] = list(serving(run))
    with run.by_someone_else():
        run.update(
            "api",
            lambda live: Edit(
                traffic=(*live.traffic, replace(live.traffic[0], revision=revision, percent=0, tag="pr-4"))
            ),
            on_progress=quiet,
        )
    with pytest.raises(DokiError) as caught:
        preview(run, secrets, 4)
    assert caught.value.message == "the tag pr-4 of api is not a preview doki made: a preview would take it over"


def test_an_unreadable_record_stops_a_preview_rather_than_dropping_every_other() -> None:
    run, secrets = world()
    with run.by_someone_else():
        run.update("api", lambda live: Edit(annotations={PREVIEWS: "{not json"}), on_progress=quiet)
    with pytest.raises(DokiError) as caught:
        preview(run, secrets, 8)
    assert caught.value.message.startswith(f"the annotation {PREVIEWS} on api, where doki records its previews")


def test_the_record_is_plain_json_of_previews_and_retired_revisions() -> None:
    run, secrets = world()
    revision = preview(run, secrets, 11)
    live = run.get("api")
    assert live is not None
    assert json.loads(live.annotations[PREVIEWS]) == {
        "previews": {
            "pr-11": {
                "source": "pull request 11",
                "commit": "2222222abc",
                "revision": revision,
                "created": "1970-01-01T00:16:40+00:00",
            }
        },
        "retired": [],
    }


def test_a_deploy_after_a_rollback_and_a_preview_keeps_what_it_would_have_kept_without_the_preview() -> None:
    run, secrets = world()
    [first] = list(serving(run))
    with run.by_someone_else():
        # A variable set by hand (gcloud), then a rollback to the revision before it.
        run.update("api", lambda live: Edit(env={"FEATURE_X": "on"}), on_progress=quiet)
        run.update("api", lambda live: Edit(traffic=(Target(first, 100),)), on_progress=quiet)
    preview(run, secrets, 12)

    after = Planner(run, secrets).plan(doki_toml(), IMAGE)

    assert after.desired.env["FEATURE_X"] == "on"


def test_an_unreadable_record_does_not_stop_a_deploy_that_would_mend_the_template() -> None:
    run, secrets = world()
    preview(run, secrets, 13)
    with run.by_someone_else():
        run.update("api", lambda live: Edit(annotations={PREVIEWS: "{not json"}), on_progress=quiet)
    plan = Planner(run, secrets).plan(doki_toml(), IMAGE)
    assert plan.desired.image == IMAGE
