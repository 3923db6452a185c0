"""The ``autoglm`` command line (installed as the ``autoglm_cli`` package)."""
