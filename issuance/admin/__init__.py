"""The back office: the desk-scoped admin, split by subject.

The admin site itself (TOTP sign-in, dashboard) is ``issuance.admin_site``, outside this
package so that making the site never imports the modules that register on it.
"""

from issuance.admin import certificates, customers, records, reference, staff  # noqa: F401
