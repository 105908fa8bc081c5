"""Orchestration: sync runs, the store, the jobs, the CLI.

Importing any part of sync first hands the installed connector plugins' declarations to config
(:mod:`sync.registry`: the ``[[sources]]`` models and the default ``[kpi] severity_map``), so settings built
by whatever uses sync (the CLI, the daemon, the bench scripts) see every installed helpdesk.
"""

from sync import registry as _registry  # noqa: F401 - imported for its registration with config
