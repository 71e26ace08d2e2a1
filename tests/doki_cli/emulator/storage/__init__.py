"""Cloud Storage emulator tests."""
