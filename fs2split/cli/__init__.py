"""``python -m fs2split COMMAND``: one module per command, each with ``add_parser`` and ``run``."""
