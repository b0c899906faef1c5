"""hostprep: prepares bare-metal hosts over SSH and registers them as ByoHosts."""
