"""One run: the worker pool, one row's way, in-doubt look-ups, the pending check, stop control,
the journal and the run folder."""
