"""Enforcement: desired limits (policies and API overrides) that survive restarts and drift."""
