"""The O2IMS REST API: a stateless HTTP front for SMOs over the system's KV records and streams."""
