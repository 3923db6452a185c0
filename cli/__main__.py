"""``python -m autoglm_cli``: the same as the ``autoglm`` command."""

from autoglm_cli.app import entry

entry()
