"""services/hostprep package."""
