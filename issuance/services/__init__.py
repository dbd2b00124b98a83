"""Writes: one module per subject, one function per use case, each in one transaction and
written to the audit log (the HackSoft style). Reads are in ``issuance.selectors``."""
