"""The certificate's stored 状態 goes: ``revoked_at`` and ``not_after`` already say it.

Nothing is lost. A revoked certificate has had its ``revoked_at`` from the start: the check
constraint ``certificate_revoked_has_time`` (since 0001) allowed "revoked" only with a
revocation time and a revocation time only with "revoked", so ``revoked_at`` carries every
revocation. "expired" was written by the nightly job on certificates whose ``not_after`` had
passed, which is what the state is derived from now. The step before the field goes verifies
both on the rows as they are and stops if one disagrees. Going back, the field is filled from
the same rule before the constraint returns.
"""

from django.db import migrations
from django.db.models import Q
from django.utils import timezone


def _derived_disagrees() -> Q:
    now = timezone.now()
    return (
        (Q(status="revoked") & Q(revoked_at__isnull=True))
        | (~Q(status="revoked") & Q(revoked_at__isnull=False))
        | (Q(status="expired") & Q(not_after__gt=now))
    )


def check_nothing_is_lost(apps, schema_editor):
    Certificate = apps.get_model("issuance", "Certificate")
    disagreeing = list(
        Certificate.objects.filter(_derived_disagrees()).values_list("serial", flat=True)[:10]
    )
    if disagreeing:
        raise RuntimeError(
            "These certificates' stored status disagrees with revoked_at/not_after; "
            f"resolve them before removing the field: {', '.join(disagreeing)}"
        )


def fill_status(apps, schema_editor):
    Certificate = apps.get_model("issuance", "Certificate")
    Certificate.objects.filter(revoked_at__isnull=False).update(status="revoked")
    Certificate.objects.filter(revoked_at__isnull=True, not_after__lte=timezone.now()).update(
        status="expired"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("issuance", "0016_auto_renewal_and_renewal_window_move"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="certificate",
            name="certificate_revoked_has_time",
        ),
        migrations.RunPython(check_nothing_is_lost, fill_status),
        migrations.RemoveField(
            model_name="certificate",
            name="status",
        ),
    ]
