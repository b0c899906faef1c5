"""Test configuration shared by every suite: fixture plugins, one per sandbox part."""

pytest_plugins = [
    "tests.fixtures.nats",
    "tests.fixtures.kubeapi",
    "tests.fixtures.capi",
    "tests.fixtures.sandbox_hosts",
]
