"""The Doki backend: a FastAPI service that connects a user's Google account and Supabase project."""

__version__ = "0.1.0"
