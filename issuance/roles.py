"""The back office's roles: Django groups and the model permissions each one holds.

A clerk (窓口担当者) views the desk's customers and does the everyday actions; a supervisor
(スーパーバイザー) sees every desk and may also revoke and export. The superuser manages desks,
staff accounts and the schedule. The groups are made by a data migration from these lists.
"""

from __future__ import annotations

CLERK = "窓口担当者"
SUPERVISOR = "スーパーバイザー"

# (app_label, codename)
_VIEW = [
    ("issuance", "view_productline"),
    ("issuance", "view_servicedesk"),
    ("issuance", "view_deskcontact"),
    ("issuance", "view_customer"),
    ("issuance", "view_kihonetuser"),
    ("issuance", "view_notice"),
    ("issuance", "view_certificate"),
    ("issuance", "view_reissuerecord"),
    ("issuance", "view_auditevent"),
    ("issuance", "view_inputlock"),
    ("issuance", "view_mismatchalert"),
    ("issuance", "view_enrollment"),
]
_EVERYDAY = [
    ("issuance", "reissue_notice"),
    ("issuance", "print_notice"),
    ("issuance", "resend_reminder"),
    ("issuance", "lift_input_lock"),
]
_SUPERVISOR_ONLY = [
    ("issuance", "revoke_certificate"),
    ("issuance", "export_data"),
    ("issuance", "import_notices"),
    ("issuance", "view_crlpublication"),
    ("issuance", "view_renewalchallenge"),
    ("notifications", "view_expiryreminder"),
]

ROLE_PERMISSIONS: dict[str, list[tuple[str, str]]] = {
    CLERK: _VIEW + _EVERYDAY,
    SUPERVISOR: _VIEW + _EVERYDAY + _SUPERVISOR_ONLY,
}

# The permission names the services check ("app_label.codename").
REISSUE = "issuance.reissue_notice"
PRINT = "issuance.print_notice"
RESEND = "issuance.resend_reminder"
LIFT_LOCK = "issuance.lift_input_lock"
REVOKE = "issuance.revoke_certificate"
EXPORT = "issuance.export_data"
IMPORT_NOTICES = "issuance.import_notices"
