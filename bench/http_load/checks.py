"""What the database must show after the run, against what the client received."""

from __future__ import annotations

from bench.http_load.config import ACQ_USER_PREFIX, RENEWAL_USER_PREFIX


def check_database(result: dict) -> list[str]:
    """What the database must show after the run; each problem as a sentence."""
    from django.db.models import Count

    from issuance.models import Certificate, Enrollment, Notice

    problems: list[str] = []
    acquisition = both_acquisition_phases(result)
    renewal = result["renewal"]

    # New acquisition: one certificate per notice, and exactly the ones the client received.
    issued = Certificate.objects.filter(notice__user__user_id__startswith=ACQ_USER_PREFIX)
    duplicated = issued.values("notice_id").annotate(n=Count("id")).filter(n__gt=1).count()
    if duplicated:
        problems.append(f"{duplicated} notices have more than one certificate")
    in_db = dict(issued.values_list("serial", "notice__user__user_id"))
    received = dict(acquisition["issued"])  # serial -> user ID, every 201 incl. the warm-up
    missing = set(received) - set(in_db)
    if missing:
        problems.append(f"{len(missing)} certificates the client received are not in the DB")
    wrong_owner = [s for s in set(received) & set(in_db) if received[s] != in_db[s]]
    if wrong_owner:
        problems.append(f"{len(wrong_owner)} certificates belong to another user than asked")
    unseen = set(in_db) - set(received)
    if unseen:
        problems.append(f"{len(unseen)} certificates were issued but never reached the client")
    unused_with_cert = Notice.objects.filter(
        user__user_id__startswith=ACQ_USER_PREFIX, used_at__isnull=True, certificates__isnull=False
    ).count()
    if unused_with_cert:
        problems.append(f"{unused_with_cert} notices have a certificate but are not marked used")

    # Every enrollment started is completed, or the client saw the flow fail after the start.
    enrollments = Enrollment.objects.filter(notice__user__user_id__startswith=ACQ_USER_PREFIX)
    started = enrollments.count()
    completed = enrollments.filter(certificate__isnull=False).count()
    if started != acquisition["started"]:
        problems.append(
            f"{started} enrollments in the DB, the client started {acquisition['started']}"
        )
    open_count = started - completed
    if open_count != acquisition["abandoned"]:
        problems.append(
            f"{open_count} enrollments left open, the client accounts for "
            f"{acquisition['abandoned']} (flows that failed after the start)"
        )
    if completed != len(received):
        problems.append(
            f"{completed} enrollments completed, the client received {len(received)} certificates"
        )

    # Renewal: one renewal per certificate, exactly the ones the client received.
    renewed = Certificate.objects.filter(
        renewed_from__user__user_id__startswith=RENEWAL_USER_PREFIX
    )
    twice = renewed.values("renewed_from_id").annotate(n=Count("id")).filter(n__gt=1).count()
    if twice:
        problems.append(f"{twice} certificates were renewed more than once")
    pairs = dict(renewed.values_list("serial", "renewed_from__serial"))
    received_pairs = {new: old for old, new in renewal["renewed"]}
    if pairs != received_pairs:
        lost = set(received_pairs) - set(pairs)
        extra = set(pairs) - set(received_pairs)
        problems.append(
            f"renewals: {len(lost)} received but not in the DB, {len(extra)} in the "
            "DB but never received, or renewed from another certificate"
        )
    return problems


def both_acquisition_phases(result: dict) -> dict:
    """What the client did in the two acquisition phases (at saturation, then paced), as one."""
    phases = (result["acquisition"], result["acquisition_paced"])
    return {
        "issued": [pair for phase in phases for pair in phase["issued"]],
        "started": sum(phase["started"] for phase in phases),
        "abandoned": sum(phase["abandoned"] for phase in phases),
    }
