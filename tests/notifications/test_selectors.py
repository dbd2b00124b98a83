"""R10, R15: the reads of the reminder job: which mail is due, what waits for a retry, whom to call."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from notifications import selectors
from notifications.models import ExpiryReminder
from tests.factories import make_customer
from tests.notifications.helpers import PRODUCT_LINE, jst, make_certificate, make_holder, renew

pytestmark = pytest.mark.django_db

Stage = ExpiryReminder.Stage
Status = ExpiryReminder.Status
EXPIRY = jst(2029, 11, 28, 13, 45)
RUN_AT = selectors.daily_run_time(date(2029, 10, 30))


def record(certificate, stage: Stage = Stage.DAYS_30, **fields) -> ExpiryReminder:
    """A reminder's record as the job leaves it (``sent`` unless told otherwise)."""
    fields.setdefault("status", Status.SENT)
    if fields["status"] == Status.SENT:
        fields.setdefault("sent_at", RUN_AT)
    return ExpiryReminder.objects.create(
        certificate=certificate,
        stage=stage,
        email=certificate.email,
        message_id=f"<reminder-{stage}-{certificate.serial}@example.jp>",
        **fields,
    )


# --- which mail is due ---------------------------------------------------------------------


def test_r10_the_daily_run_is_at_9_japan_time():
    assert selectors.daily_run_time(date(2029, 10, 30)) == datetime(2029, 10, 30, 0, 0, tzinfo=UTC)
    assert RUN_AT.isoformat() == "2029-10-30T09:00:00+09:00"


@pytest.mark.parametrize(
    ("days_before", "renewed", "expected"),
    [
        (31, False, None),
        (30, False, Stage.DAYS_30),
        (8, False, Stage.DAYS_30),
        (7, False, Stage.DAYS_7),
        (1, False, Stage.DAYS_7),
        (0, False, None),
        (-1, False, None),
        (30, True, None),
        (7, True, Stage.DAYS_7),
    ],
)
def test_r10_current_stage(days_before, renewed, expected):
    at = EXPIRY - timedelta(days=days_before)
    assert selectors.current_stage(not_after=EXPIRY, at=at, renewed=renewed) == expected


def test_r10_the_30_day_point_is_the_moment_30_days_before_expiry():
    """At 09:00 the certificate expiring at 13:45 thirty days later is not due yet."""
    assert (
        selectors.current_stage(
            not_after=EXPIRY, at=EXPIRY - timedelta(days=30, minutes=1), renewed=False
        )
        is None
    )


def test_r10_due_certificates_are_those_inside_the_stage_window_without_a_record():
    """The 30-day window is (7 days, 30 days] before the expiry and not renewed; the 7-day one
    (now, 7 days], renewed or not; revoked ones and those with a record of the stage never."""
    thirty = make_certificate(not_after=RUN_AT + timedelta(days=30))
    eight = make_certificate(not_after=RUN_AT + timedelta(days=8))
    seven = make_certificate(not_after=RUN_AT + timedelta(days=7))
    renewed_seven = make_certificate(not_after=RUN_AT + timedelta(days=3))
    renew(renewed_seven)
    renewed_thirty = make_certificate(not_after=RUN_AT + timedelta(days=20))
    renew(renewed_thirty)
    make_certificate(not_after=RUN_AT + timedelta(days=30, minutes=1))  # not yet
    make_certificate(not_after=RUN_AT)  # expired at the run
    make_certificate(not_after=RUN_AT + timedelta(days=10), revoked=True)
    sent = make_certificate(not_after=RUN_AT + timedelta(days=15))
    record(sent, Stage.DAYS_30)
    seven_after_thirty = make_certificate(not_after=RUN_AT + timedelta(days=5))
    record(seven_after_thirty, Stage.DAYS_30)  # the 30-day record does not hide the 7-day mail

    def due(stage: Stage) -> list[int]:
        return [c.pk for c in selectors.due_certificates(at=RUN_AT, stage=stage, limit=100)]

    assert due(Stage.DAYS_30) == [eight.pk, thirty.pk]  # by expiry
    assert due(Stage.DAYS_7) == [renewed_seven.pk, seven_after_thirty.pk, seven.pk]


def test_r10_due_certificates_come_in_batches_after_the_key_of_the_last():
    same_moment = RUN_AT + timedelta(days=20)
    certificates = [make_certificate(not_after=same_moment) for _ in range(3)]
    certificates.append(make_certificate(not_after=same_moment + timedelta(days=1)))
    expected = sorted(certificates, key=lambda c: (c.not_after, c.pk))
    batches = []
    after = None
    while batch := selectors.due_certificates(at=RUN_AT, stage=Stage.DAYS_30, limit=2, after=after):
        batches.append([c.pk for c in batch])
        after = (batch[-1].not_after, batch[-1].pk)
    assert batches == [[expected[0].pk, expected[1].pk], [expected[2].pk, expected[3].pk]]


def test_r10_r15_a_due_certificate_carries_what_its_mail_needs_in_one_query(
    django_assert_num_queries,
):
    old = make_certificate(not_after=RUN_AT + timedelta(days=5))
    new = renew(old)
    with django_assert_num_queries(1):
        [certificate] = selectors.due_certificates(at=RUN_AT, stage=Stage.DAYS_7, limit=10)
        assert certificate.renewal_not_after == new.not_after
        assert certificate.renewal_revoked_at is None
        assert certificate.auto_renewal_checked_in_at is None
        assert certificate.user.customer.name == old.user.customer.name


# --- what waits for a retry ----------------------------------------------------------------


def test_r10_the_records_to_retry_are_the_due_pending_ones_under_the_attempt_limit():
    def pending(attempts: int, due_in: timedelta, status=Status.RETRYING) -> ExpiryReminder:
        return record(
            make_certificate(not_after=EXPIRY),
            status=status,
            attempts=attempts,
            next_attempt_at=RUN_AT + due_in,
        )

    later_due = pending(1, -timedelta(minutes=1))
    first_due = pending(2, -timedelta(minutes=5))
    abandoned = pending(1, -timedelta(seconds=1), status=Status.SENDING)  # its lease is over
    pending(1, timedelta(minutes=1))  # not due yet
    pending(3, -timedelta(minutes=10))  # no attempt left
    record(make_certificate(not_after=EXPIRY))  # sent
    assert selectors.reminder_ids_to_retry(now=RUN_AT, max_attempts=3, limit=10) == [
        first_due.pk,
        later_due.pk,
        abandoned.pk,
    ]
    assert selectors.reminder_ids_to_retry(now=RUN_AT, max_attempts=3, limit=1) == [first_due.pk]


def test_r10_claimed_reminders_are_those_of_the_token_with_their_certificate():
    token = uuid.uuid4()
    old = make_certificate(not_after=EXPIRY)
    new = renew(old)
    ours = record(old, status=Status.SENDING, claim_token=token, next_attempt_at=RUN_AT)
    theirs = record(
        make_certificate(not_after=EXPIRY),
        status=Status.SENDING,
        claim_token=uuid.uuid4(),
        next_attempt_at=RUN_AT,
    )
    [reminder] = selectors.claimed_reminders(ids=[ours.pk, theirs.pk], token=token)
    assert reminder.pk == ours.pk
    assert reminder.certificate.renewal_not_after == new.not_after
    assert reminder.certificate.renewal_revoked_at is None
    assert reminder.certificate.auto_renewal_checked_in_at is None


def test_r10_the_next_pending_moment_is_the_earliest_retry_or_lease():
    assert selectors.next_pending_at() is None
    record(make_certificate(not_after=EXPIRY))  # sent: nothing pending
    assert selectors.next_pending_at() is None
    record(
        make_certificate(not_after=EXPIRY),
        status=Status.RETRYING,
        next_attempt_at=RUN_AT + timedelta(minutes=10),
    )
    record(
        make_certificate(not_after=EXPIRY),
        status=Status.SENDING,
        next_attempt_at=RUN_AT + timedelta(minutes=15),
    )
    assert selectors.next_pending_at() == RUN_AT + timedelta(minutes=10)


# --- whom to call --------------------------------------------------------------------------


def test_r15_the_desk_directory_gives_the_desks_and_hours_of_the_product_lines():
    contacts = selectors.DeskDirectory().for_customer(make_holder().customer)
    assert [(row.product_line, row.desk, row.phone) for row in contacts.rows] == [
        (PRODUCT_LINE, "団体保険課", "0120-338-688"),
        (PRODUCT_LINE, "法人サービスセンター", "0120-563-928"),
    ]
    assert contacts.hours == ("月～金曜日 9:00～17:00（祝日、12/31～1/3を除きます）",)
    before_start = selectors.DeskDirectory().for_customer(make_customer(started_using=False))
    assert [row.phone for row in before_start.rows] == ["0120-150-012"]


def test_r15_the_desk_directory_asks_once_per_set_of_product_lines(django_assert_num_queries):
    directory = selectors.DeskDirectory()
    first, second, third = (make_holder().customer for _ in range(3))
    other = make_customer(product_lines=("総合福祉団体定期保険",), started_using=True)
    directory.for_customer(first)
    with django_assert_num_queries(0):
        directory.for_customer(first)
    with django_assert_num_queries(1):  # the product lines of a customer not seen yet
        assert directory.for_customer(second) == directory.for_customer(first)
    with django_assert_num_queries(1):  # three customers' lines, two of them new, in one query
        directory.load([first, other, third])
    with django_assert_num_queries(0):
        directory.load([first, other])
    assert directory.for_customer(other) != directory.for_customer(first)
