"""One module per process: its states, transitions, roles and deadlines."""
