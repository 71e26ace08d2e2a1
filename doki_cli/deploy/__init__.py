"""The deploy core: what doki.toml asks for, compared with what runs, and the calls that close the gap."""
