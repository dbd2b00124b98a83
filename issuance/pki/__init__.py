"""Pure PKI code of the kihonet CA: keys, certificate profiles, CSR checks, CRL, OCSP, PoP.

Imports nothing from Django, only the standard library and ``cryptography``. Errors carry a
stable ``code``; the Django layer turns codes into messages for people.
"""
