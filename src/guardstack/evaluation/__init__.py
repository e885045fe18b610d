"""``guardstack eval``: measure a guard on labelled JSONL files.

:mod:`.reader` turns the normalized dataset schema into subjects,
:mod:`.metrics` holds the pure metric functions, :mod:`.runner` scores
files with a :class:`~guardstack.guard.Guard`, :mod:`.report` renders the
human table and :mod:`.commands` wires the CLI.
"""
