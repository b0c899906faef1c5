"""o2ims: the ProvisioningRequest state machine: drives host preparation, CAPI apply and readiness for one cluster."""
