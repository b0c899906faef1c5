"""focom: the SMO-facing front office.

Validates FOCOM requests against the inventory, reserves hosts and fans out one O2IMS request
per cluster; rolls the children's status up into the request's phase.
"""
