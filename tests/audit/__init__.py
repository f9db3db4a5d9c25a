"""The audit log: chains, checkpoints, atomic events, export and verification, the audit console (HTTP and units)."""
