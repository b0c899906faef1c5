"""services/focom package."""
