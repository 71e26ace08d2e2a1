from doki_cli.main import run

run()
