"""Simulated Cluster API (core, KCP, CABPK, CRS) and BYOH controllers plus the BYOH host agent, for the sandbox."""

from sandbox.capi.agent import HostAgent
from sandbox.capi.fakehosts import register_fake_hosts
from sandbox.capi.options import SimOptions
from sandbox.capi.simulators import CapiSimulators, run_simulators

__all__ = ["CapiSimulators", "HostAgent", "SimOptions", "register_fake_hosts", "run_simulators"]
