"""The ``cvault`` command line."""
