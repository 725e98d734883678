"""Command-line pieces below `cli.py`: finding the installation (data directory), and the
commands that talk to a running server over the admin API (sources, integrations, send, tail,
apply), plus the local trial sink."""
