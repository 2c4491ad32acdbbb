"""report.html: one self-contained page per run folder (``page.write_report``)."""
