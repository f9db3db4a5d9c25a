"""Audit: hash-chained, append-only events with group commit (docs/audit.md).

Import from the submodules (``vault.audit.event``, ``.log``, ``.query``, ``.chain``); this
package imports nothing, so ``vault.storage.audit`` can use the event types without a cycle.
"""
