"""Built-in plugins: the program types of the cQube API, written with the same hooks as any plugin."""
