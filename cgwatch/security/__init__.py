"""Who may change limits: bearer tokens, and the audit trail of every attempt."""
