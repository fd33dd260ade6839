"""Reports built from run records: the summary (JSON) and the terminal table."""
