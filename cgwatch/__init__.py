"""cgwatch: a per-host container resource agent (cAdvisor-compatible metrics, safe limits)."""

__version__ = "0.1.0"
