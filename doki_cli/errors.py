"""The one error type every command raises, and the catalog of its codes: the contract of `--json`.

Each code has one meaning and the exit code a command ends with when it fails with it; `docs/errors.md` is made from
this catalog (and a test keeps the two the same). `doki release` maps a few onto its own exit codes (see its help).
"""

from __future__ import annotations

from enum import StrEnum

EXIT_FAILED = 1
EXIT_CHECK_FAILED = 3  # the new revision failed to become Ready or failed a smoke check (release)
EXIT_BUILD_FAILED = 4  # the image could not be built or pushed (release)
EXIT_LOCKED = 5  # another release holds the service's release lock
EXIT_CONFIG = 78  # EX_CONFIG, as the backend exits on bad settings: fix doki.toml, the checkout or the project
EXIT_TIMEOUT = 124  # as timeout(1) exits: a wait outlasted --timeout, the change goes on at Google
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


class Code(StrEnum):
    """Every error code doki reports, with its meaning and the exit code it comes with."""

    meaning: str
    exit_code: int

    def __new__(cls, value: str, exit_code: int, meaning: str) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.exit_code = exit_code
        return member

    # The command line
    USAGE_ERROR = "usage_error", 2, "an unknown command or option, or a value of the wrong type"
    BAD_OPTION = "bad_option", EXIT_FAILED, "options that do not go together, or a value doki cannot use"
    ABORTED = "aborted", EXIT_FAILED, "a question was answered no, or not at all; nothing was changed"
    CONFIRMATION_REQUIRED = (
        "confirmation_required",
        EXIT_FAILED,
        "a change needs a yes and nobody can answer (no terminal, or --json): pass --yes; nothing was changed",
    )
    BAD_CHOICE = "bad_choice", EXIT_FAILED, "the number picked is not in the list shown; nothing was changed"
    NOTHING_TO_CHANGE = "nothing_to_change", EXIT_FAILED, "a command that changes something was given nothing to change"
    INTERRUPTED = "interrupted", EXIT_INTERRUPTED, "Ctrl-C; the message says what was sent and what did not run"
    INTERNAL_ERROR = "internal_error", EXIT_FAILED, "a bug in doki: rerun with -v for the traceback and report it"

    # doki.toml and the checkout
    CONFIG_NOT_FOUND = "config_not_found", EXIT_FAILED, "no doki.toml where the command looked"
    CONFIG_INVALID = "config_invalid", EXIT_FAILED, "doki.toml (or the backend's settings) has values doki refuses"
    UNKNOWN_ENV = "unknown_env", EXIT_FAILED, "--env names an environment doki.toml does not declare"
    NO_COMMIT = "no_commit", EXIT_CONFIG, "nothing names the commit to release: no git checkout, --sha or CI variable"
    BAD_COMMIT = "bad_commit", EXIT_CONFIG, "the commit given is not a commit sha"
    COMMIT_MISMATCH = "commit_mismatch", EXIT_CONFIG, "the commit to release is not the one checked out"
    DIRTY_TREE = "dirty_tree", EXIT_CONFIG, "uncommitted changes to files the image holds (--allow-dirty)"
    NO_GIT_VERSION = "no_git_version", EXIT_FAILED, "no git commit to name the image by (build --tag, deploy --image)"
    FILES_EXIST = "files_exist", EXIT_FAILED, "doki init would overwrite files that exist"
    NOT_A_DIRECTORY = "not_a_directory", EXIT_FAILED, "the directory given does not exist"
    PROJECT_REQUIRED = (
        "project_required",
        EXIT_FAILED,
        "doki init, or `--service` without a doki.toml, needs the Google Cloud project",
    )
    SERVICE_REQUIRED = "service_required", EXIT_FAILED, "no valid service name could be made; name one"
    SERVICE_NAME_TOO_LONG = "service_name_too_long", EXIT_CONFIG, "the service name leaves no room for a release tag"

    # What a deploy or release checks before it writes
    WOULD_NOT_START = "would_not_start", EXIT_CONFIG, "the backend would refuse the new revision's settings"
    REFUSED_BY_CLOUD_RUN = "refused_by_cloud_run", EXIT_CONFIG, "Cloud Run would refuse the CPU or memory asked for"
    IMAGE_NOT_PUSHED = "image_not_pushed", EXIT_CONFIG, "the image is not in Artifact Registry for Cloud Run to pull"
    BAD_IMAGE = "bad_image", EXIT_FAILED, "not an image reference (REGISTRY/PATH:TAG or @sha256:DIGEST)"
    SECRET_MISSING = "secret_missing", EXIT_CONFIG, "a secret doki.toml names does not exist in Secret Manager"
    SECRET_VERSION_UNUSABLE = (
        "secret_version_unusable",
        EXIT_CONFIG,
        "the secret version a revision would read is missing, disabled or destroyed",
    )
    SERVICE_ACCOUNT_MISSING = (
        "service_account_missing",
        EXIT_CONFIG,
        "the runtime service account does not exist (doki doctor --create-account)",
    )
    REPEATS_FAILED_REVISION = (
        "repeats_failed_revision",
        EXIT_FAILED,
        "the new revision would be the one that failed, same image and settings (--yes tries again)",
    )
    RELEASE_LOCKED = "release_locked", EXIT_LOCKED, "another release holds the service's release lock"

    # Secrets and .env
    SECRETS_SOURCE_MISSING = (
        "secrets_source_missing",
        EXIT_FAILED,
        "no .env file where --from (release: --secrets-from) points",
    )
    SECRET_VALUE_MISSING = "secret_value_missing", EXIT_FAILED, "the .env file has no value for a declared secret"
    EMPTY_SECRET = "empty_secret", EXIT_FAILED, "a secret's value is empty, which Secret Manager refuses"
    CONFLICTING_VALUES = "conflicting_values", EXIT_FAILED, "variables that share one secret have different values"
    UNKNOWN_SECRET = "unknown_secret", EXIT_FAILED, "a name given is not a secret doki.toml declares"
    NO_SECRETS_DECLARED = "no_secrets_declared", EXIT_FAILED, "doki.toml declares no secrets"
    NO_SERVICE_ACCOUNT = "no_service_account", EXIT_FAILED, "doki.toml names no service_account to grant access to"

    # The live service
    SERVICE_NOT_FOUND = "service_not_found", EXIT_FAILED, "no such Cloud Run service (deploy it, or check the project)"
    REVISION_NOT_READY = "revision_not_ready", EXIT_FAILED, "a revision did not become Ready; traffic stayed put"
    UNKNOWN_REVISION = "unknown_revision", EXIT_FAILED, "the service has no revision of that name"
    NO_EARLIER_REVISION = "no_earlier_revision", EXIT_FAILED, "no Ready revision older than the serving one"
    WAIT_TIMEOUT = (
        "wait_timeout",
        EXIT_TIMEOUT,
        "Cloud Run did not finish the change within --timeout (15m unless given); it goes on at Google (doki status)",
    )
    NO_INGRESS_CONTAINER = "no_ingress_container", EXIT_FAILED, "several containers and none declares a port"
    PUBLIC_ACCESS_REFUSED = (
        "public_access_refused",
        EXIT_FAILED,
        "the organisation refused allUsers as invoker; the service stays private",
    )
    BAD_ORIGIN = "bad_origin", EXIT_FAILED, "not an origin browsers send (scheme://host[:port]), or '*'"
    UNKNOWN_ORIGIN = "unknown_origin", EXIT_FAILED, "an origin to remove is not allowed now"
    NO_ORIGINS_LEFT = "no_origins_left", EXIT_FAILED, "the change would leave ALLOWED_ORIGINS empty"
    BAD_SCALE = "bad_scale", EXIT_FAILED, "scaling or resources Cloud Run would refuse"
    HEALTH_CHECK_FAILED = "health_check_failed", EXIT_FAILED, "the service's URL did not answer the health contract"
    SMOKE_CHECK_FAILED = "smoke_check_failed", EXIT_CHECK_FAILED, "a release's smoke check failed; traffic not moved"
    NO_TAG_URL = "no_tag_url", EXIT_FAILED, "Cloud Run gave the release's tag no URL to check it on"
    RELEASE_LOCK_LOST = "release_lock_lost", EXIT_LOCKED, "another release took the lock while this one ran"
    RELEASE_CLEANUP_FAILED = (
        "release_cleanup_failed",
        EXIT_FAILED,
        "a release failed, and putting the traffic back failed too",
    )
    CONCURRENT_CHANGE = "concurrent_change", EXIT_FAILED, "the resource kept changing under doki; run again"
    BAD_DOMAIN = "bad_domain", EXIT_FAILED, "not a domain name a Cloud Run domain mapping can take"
    DOMAIN_NOT_VERIFIED = (
        "domain_not_verified",
        EXIT_FAILED,
        "the domain (or a parent of it) is not verified as yours, which a domain mapping needs; nothing was changed",
    )
    DOMAIN_MAPPINGS_UNAVAILABLE = (
        "domain_mappings_unavailable",
        EXIT_FAILED,
        "Cloud Run has no domain mappings in the service's region: use a load balancer (the hint says how)",
    )
    DOMAIN_IN_USE = "domain_in_use", EXIT_FAILED, "the domain is mapped to another service already; nothing was changed"
    UNKNOWN_DOMAIN = "unknown_domain", EXIT_FAILED, "no domain mapping of that name in the service's region"
    DOMAIN_MAPPING_FAILED = "domain_mapping_failed", EXIT_FAILED, "Cloud Run made the domain mapping, and it failed"
    NO_PRICE = "no_price", EXIT_FAILED, "the Cloud Billing Catalog has no Cloud Run price for the region"
    CHECK_IN_USE = (
        "check_in_use",
        EXIT_FAILED,
        "an uptime check doki would delete is read by an alert policy doki did not make; nothing was changed",
    )
    MONITORING_NOT_DECLARED = (
        "monitoring_not_declared",
        EXIT_FAILED,
        "doki.toml has no [monitoring], and doki keeps no uptime check or alert for the service",
    )
    ROTATION_REFUSED = (
        "rotation_refused",
        EXIT_FAILED,
        "the service's key cannot be rotated as it is set up (or traffic is pinned); nothing more was changed",
    )
    PREVIEW_HOLDS_TEMPLATE = (
        "preview_holds_template",
        EXIT_FAILED,
        "a preview holds the service's template: deploy first, or the change would run the preview's code",
    )
    UNKNOWN_PREVIEW = "unknown_preview", EXIT_FAILED, "the service has no preview of that tag"
    NOTHING_SERVES = "nothing_serves", EXIT_FAILED, "no revision of the service serves traffic yet: deploy first"
    STORE_UNAVAILABLE = (
        "store_unavailable",
        EXIT_FAILED,
        "the service's credential store did not answer; nothing was changed",
    )
    REENCRYPTION_INTERRUPTED = (
        "reencryption_interrupted",
        EXIT_FAILED,
        "the credential store stopped answering during a re-encryption; every credential is still readable: run again",
    )

    # Google's answers
    NO_CREDENTIALS = "no_credentials", EXIT_FAILED, "no Google credentials (gcloud auth application-default login)"
    NOT_AUTHENTICATED = "not_authenticated", EXIT_FAILED, "Google refused the credentials"
    CREDENTIALS_EXPIRED = "credentials_expired", EXIT_FAILED, "the saved login expired or was revoked: sign in again"
    GOOGLE_UNREACHABLE = "google_unreachable", EXIT_FAILED, "Google could not be reached for an access token"
    GOOGLE_UNAVAILABLE = "google_unavailable", EXIT_FAILED, "Google kept failing after the retries"
    GOOGLE_ERROR = "google_error", EXIT_FAILED, "an error from Google that no other code describes"
    PERMISSION_DENIED = "permission_denied", EXIT_FAILED, "the credentials lack a permission; the hint names the role"
    API_DISABLED = "api_disabled", EXIT_FAILED, "a Google API is not enabled in the project"
    NOT_FOUND = "not_found", EXIT_FAILED, "Google has no such resource"
    INVALID_ARGUMENT = "invalid_argument", EXIT_FAILED, "Google refused a value in the request"
    REVISION_CONFLICT = "revision_conflict", EXIT_FAILED, "Cloud Run refused a revision name that is taken"
    ORG_POLICY_REFUSED = "org_policy_refused", EXIT_FAILED, "an organisation policy refused the change"
    QUOTA_EXCEEDED = "quota_exceeded", EXIT_FAILED, "a Google quota is spent"
    ACT_AS_DENIED = "act_as_denied", EXIT_FAILED, "the credentials may not deploy as the runtime account"
    NO_IDENTITY_TOKEN = "no_identity_token", EXIT_FAILED, "no ID token could be minted for a private service's checks"
    NOT_USER_MANAGED = "not_user_managed", EXIT_FAILED, "an account doki cannot create (not NAME@PROJECT...)"
    ENABLE_TIMEOUT = "enable_timeout", EXIT_FAILED, "APIs were not enabled in time"
    CREATE_TIMEOUT = "create_timeout", EXIT_FAILED, "a resource was not created in time"
    BUILD_ACCOUNT_DENIED = "build_account_denied", EXIT_FAILED, "Cloud Build may not run as the build account"
    BUILD_BUCKET_NOT_OURS = "build_bucket_not_ours", EXIT_FAILED, "the build's source bucket belongs to another project"

    # Images and the container engine
    DOCKER_UNREACHABLE = "docker_unreachable", EXIT_FAILED, "no Docker engine answers"
    BUILD_FAILED = "build_failed", EXIT_FAILED, "the image build failed"
    IMAGE_NOT_FOUND = "image_not_found", EXIT_FAILED, "no local image of that name"
    PULL_FAILED = "pull_failed", EXIT_FAILED, "the engine could not pull an image"
    PUSH_FAILED = "push_failed", EXIT_FAILED, "pushing the image failed"
    PUSH_DENIED = "push_denied", EXIT_FAILED, "the registry refused the push's credentials"
    REPOSITORY_NOT_FOUND = "repository_not_found", EXIT_FAILED, "the registry has no such repository"
    REGISTRY_UNREACHABLE = "registry_unreachable", EXIT_FAILED, "the Docker engine cannot reach the registry"
    CONTAINER_START_FAILED = "container_start_failed", EXIT_FAILED, "the engine could not start the container"
    CONTAINER_EXITED = "container_exited", EXIT_FAILED, "the container exited before it served"
    CONTAINER_NOT_READY = "container_not_ready", EXIT_FAILED, "the container did not answer in time"
    NO_PORT_PUBLISHING = "no_port_publishing", EXIT_FAILED, "the engine has no bridge to publish ports (--network host)"
    PORT_UNAVAILABLE = "port_unavailable", EXIT_FAILED, "the port to listen on is taken"

    # The emulator
    NO_EMULATOR = "no_emulator", EXIT_FAILED, "no emulator is configured"
    BAD_EMULATOR_ADDRESS = "bad_emulator_address", EXIT_FAILED, "DOKI_EMULATOR is not host:port"
    EMULATOR_UNREACHABLE = "emulator_unreachable", EXIT_FAILED, "nothing answers at DOKI_EMULATOR"
    NO_REGISTRY_EMULATOR = "no_registry_emulator", EXIT_FAILED, "DOKI_EMULATOR without DOKI_EMULATOR_REGISTRY"
    NO_STORAGE_EMULATOR = "no_storage_emulator", EXIT_FAILED, "DOKI_EMULATOR without STORAGE_EMULATOR_HOST"
    EMULATOR_NOT_RUNNING = "emulator_not_running", EXIT_FAILED, "no emulator runs for that state directory"
    EMULATOR_PORT_IN_USE = "emulator_port_in_use", EXIT_FAILED, "the emulator's ports are taken"
    EMULATOR_STATE_CORRUPT = "emulator_state_corrupt", EXIT_FAILED, "the emulator's state directory cannot be read"
    EMULATOR_START_FAILED = "emulator_start_failed", EXIT_FAILED, "the emulator process exited as it started"
    EMULATOR_START_TIMEOUT = "emulator_start_timeout", EXIT_FAILED, "the emulator did not start answering in time"
    EMULATOR_STOP_TIMEOUT = "emulator_stop_timeout", EXIT_FAILED, "the emulator did not stop in time"


class DokiError(Exception):
    """A failure the user can act on. Rendered in one place (`doki_cli.output`), human or JSON."""

    def __init__(
        self,
        code: Code,
        message: str,
        hint: str | None = None,
        *,
        exit_code: int | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        # The catalog's, unless the command's own contract says otherwise (`doki release`'s exit codes).
        self.exit_code = code.exit_code if exit_code is None else exit_code
        # What the command had done when it failed (e.g. a release's summary): JSON output carries it beside the error.
        self.details = details or {}

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code.value, "message": self.message, "hint": self.hint}


def service_not_found(path: str) -> DokiError:
    """The service at `path` does not exist: not deployed yet, or a wrong project, region or name."""
    return DokiError(
        Code.SERVICE_NOT_FOUND,
        f"{path} does not exist",
        "deploy it with `doki deploy` (or check --project/--region/--env)",
    )
