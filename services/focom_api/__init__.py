"""FOCOM's northbound REST API (``/focom/v1``): requests, plans, approvals, inventory and signed notifications."""
