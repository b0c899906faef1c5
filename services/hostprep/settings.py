"""Settings of the hostprep service (environment prefix ``O2_HOSTPREP_``, common fields ``O2_*``).

Credentials are never on the bus: hostprep finds a host's secret by host id in the inventory
file (``host_pwd``, ``ssh_key_file``) or falls back to ``ssh_key_file``. Host keys come from a
``known_hosts`` file and/or a file of pinned keys (``host_id: "<openssh public key>"``, JSON or
YAML); a host with neither fails, it is never trusted on first use.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.inventory import DEFAULT_SSH_KEY_DIR
from shared.settings import ServiceSettings

DEFAULT_K8S_REPO = "https://pkgs.k8s.io/core:/stable:"


class HostprepSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="O2_HOSTPREP_", extra="ignore", populate_by_name=True, frozen=True)

    # -- credentials and host keys --------------------------------------------------------------
    #: The inventory (``input.json``) whose ``hosts[]`` may carry ``host_pwd`` and ``ssh_key_file``.
    inventory_file: Path | None = None
    #: Private key used for hosts without their own ``ssh_key_file``.
    ssh_key_file: Path | None = None
    #: An inventory ``ssh_key_file`` must name a file in this directory (the same setting focom validates with).
    ssh_key_dir: Path = DEFAULT_SSH_KEY_DIR
    ssh_key_passphrase: SecretStr | None = None
    known_hosts_file: Path | None = None
    #: ``{host_id: "ssh-ed25519 AAAA..."}`` (JSON or YAML); checked before ``known_hosts_file``.
    pinned_host_keys_file: Path | None = None

    # -- the management cluster -----------------------------------------------------------------
    #: Kubeconfig of the management cluster (BootstrapKubeconfig objects, ByoHost watch).
    kubeconfig: Path | None = None
    #: The management API URL as reachable FROM THE HOSTS (default: the kubeconfig's server).
    management_api_url: str | None = None
    #: PEM file of the management API CA (default: the kubeconfig's CA).
    management_ca_file: Path | None = None

    # -- the BYOH agent -------------------------------------------------------------------------
    #: https URL the hosts download the agent from (``{arch}`` becomes amd64/arm64); or push a local file.
    agent_binary_url: str | None = Field(None, pattern=r"^https://[!-~]+$", max_length=2048)
    agent_binary_file: Path | None = None
    #: Expected sha256 of the agent binary: required with a URL; with a file, computed from it (and
    #: checked against this when set); alone, it verifies an agent installed by other means.
    agent_binary_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    agent_install_path: str = "/usr/local/bin/byoh-hostagent"

    # -- the recipe -----------------------------------------------------------------------------
    #: pkgs.k8s.io base; ``<base>/v1.<minor>/deb/`` is the repository (point it at a mirror offline).
    k8s_repo_base: str = DEFAULT_K8S_REPO
    #: Debian revision of the kubelet/kubeadm/kubectl packages (``1.30.2-<revision>``).
    k8s_package_revision: str = Field("1.1", pattern=r"^[0-9A-Za-z.+~]+$")
    min_free_disk_gib: float = Field(10.0, ge=0)
    #: Seconds apt waits for the dpkg lock (unattended-upgrades) before failing.
    apt_lock_timeout: int = Field(300, ge=0)

    # -- concurrency, timeouts, retries ---------------------------------------------------------
    #: Hosts prepared at once, across all jobs of this replica.
    max_parallel_hosts: int = Field(50, ge=1)
    connect_timeout: float = Field(15.0, gt=0)
    #: Per command (checks and actions); apt-get and image work is slow on real hosts.
    command_timeout: float = Field(900.0, gt=0)
    #: A job's hosts must finish within this many seconds of the job message.
    job_timeout: float = Field(1800.0, gt=0)
    #: How long to wait for the ByoHost after the agent started.
    registration_timeout: float = Field(600.0, gt=0)
    #: How long to wait for the controller to fill a BootstrapKubeconfig's status.
    bootstrap_kubeconfig_timeout: float = Field(120.0, gt=0)
    #: A bootstrap token lives 30 min; one older than this is replaced before use.
    bootstrap_token_max_age: float = Field(1200.0, gt=0)
    retry_initial_delay: float = Field(1.0, gt=0)
    retry_max_delay: float = Field(30.0, gt=0)
    #: Attempts per step for temporary failures (connection refused/lost, timeouts).
    max_step_attempts: int = Field(5, ge=1)
    #: ack_wait of the jobs consumer; heartbeats keep a long job's message while it runs.
    jobs_ack_wait: float = Field(60.0, gt=0)
    #: Seconds a host's routine step transition (running, done, skipped) waits before it is published; a newer
    #: one replaces it. Failures, retries, waits and the host's outcome go out at once. 0: publish every one.
    progress_settle: float = Field(1.0, ge=0, le=60)

    @model_validator(mode="after")
    def _one_agent_source(self) -> HostprepSettings:
        if self.agent_binary_url and self.agent_binary_file:
            raise ValueError("set agent_binary_url or agent_binary_file, not both")
        if self.agent_binary_url and not self.agent_binary_sha256:
            raise ValueError("agent_binary_url needs agent_binary_sha256: a downloaded agent is verified before use")
        return self
