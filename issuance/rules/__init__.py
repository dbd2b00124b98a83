"""The business rules as pure functions: no ORM, no request, like ``issuance.pki``.

One module per rule family (RULES.md states the rules):
``formats`` (R01), ``business_days`` (R02), ``renewal`` (R09, R11), ``reissue`` (R05, R16), ``renewal_info`` (the suggested window for auto-renewal, inside R09).
"""
