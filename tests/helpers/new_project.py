"""A project that has not met doki yet, and the frontend options and .env `doki init` then asks for (used by the init
tests and the init-to-release rehearsal)."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from tests.helpers import copy_checkout

FRONTEND = ("--supabase-url", "https://abcdefghijklmnop.supabase.co", "--origin", "https://one.example")


def fill_env(root: Path) -> None:
    """What the next step `doki init` prints asks: .env from .env.example, with a value for every secret."""
    values = {
        "SUPABASE_SECRET_KEY": "service-role-key-for-tests",
        "GOOGLE_CLIENT_ID": "client-id.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "google-client-secret-for-tests",
        "SESSION_SECRET_KEY": "s" * 48,
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    env = (root / ".env.example").read_text()
    for name, value in values.items():
        env = env.replace(f"# {name}=\n", f"{name}={value}\n")
    (root / ".env").write_text(env)


def checkout_without_doki_files(destination: Path) -> Path:
    """This repository as a project that has not met doki yet."""
    root = copy_checkout(destination)
    (root / "doki.toml").unlink()
    (root / ".dockerignore").unlink()
    return root
