"""``python -m flows.cli``: the ``csp`` command line."""

from flows.cli.main import app

app()
