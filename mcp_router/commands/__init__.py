"""Command-line verbs with more to them than the few lines of glue `cli.py` holds for each."""
