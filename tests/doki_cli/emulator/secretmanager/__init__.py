"""Secret Manager emulator tests."""
