"""Templates of a spec: the file a user fills in (CSV or .xlsx), in the spec's column order."""
