"""Reading the input file: encoding and header, whole-file checks, rows, row rules, duplicates,
validate's report."""
