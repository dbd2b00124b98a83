"""The record of each expiry reminder: one row per (certificate, stage), claimed before sending."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from issuance.models import Certificate


class ExpiryReminder(models.Model):
    """The 30-day or 7-day mail of one certificate (R10).

    The unique constraint on (certificate, stage) is the claim: a worker inserts the row before it
    sends, and only the worker whose insert went through sends, so a mail goes out at most once.
    """

    class Stage(models.IntegerChoices):
        DAYS_30 = 30, _("30日前")
        DAYS_7 = 7, _("7日前")

        @property
        def lead_time(self) -> timedelta:
            """How long before the expiry the stage begins."""
            return timedelta(days=self.value)

    class Status(models.TextChoices):
        SENDING = "sending", _("送信中")
        RETRYING = "retrying", _("再送待ち")
        SENT = "sent", _("送信済み")
        FAILED = "failed", _("送信失敗")
        CANCELLED = "cancelled", _("送信中止")

    PENDING = (Status.SENDING, Status.RETRYING)

    certificate = models.ForeignKey(
        Certificate,
        on_delete=models.PROTECT,
        related_name="expiry_reminders",
        verbose_name=_("クライアント証明書"),
        db_index=False,  # the unique (certificate, stage) index serves both
    )
    stage = models.PositiveSmallIntegerField(_("案内の種類"), choices=Stage.choices)
    status = models.CharField(
        _("状態"), max_length=10, choices=Status.choices, default=Status.SENDING
    )
    email = models.EmailField(_("送信先"))
    message_id = models.CharField(_("Message-ID"), max_length=255)
    renewed = models.BooleanField(
        _("更新済みの案内"),
        default=False,
        help_text=_("7日前の案内で、更新が完了している旨をお知らせした場合は「はい」。"),
    )
    attempts = models.PositiveSmallIntegerField(_("送信試行回数"), default=0)
    claim_token = models.UUIDField(_("処理中のジョブ"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        _("次の処理予定"),
        null=True,
        blank=True,
        help_text=_("再送待ちは次に送信する日時、送信中は処理が中断したとみなす日時。"),
    )
    sent_at = models.DateTimeField(_("送信日時"), null=True, blank=True)
    last_error = models.TextField(_("最後のエラー"), blank=True)
    created_at = models.DateTimeField(_("登録日時"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新日時"), default=timezone.now)

    # Only on the rows of a query annotated with CertificateQuerySet.renewal_columns() (and
    # auto_renewal_columns()).
    renewal_not_after: datetime | None
    renewal_revoked_at: datetime | None
    auto_renewal_checked_in_at: datetime | None

    class Meta:
        verbose_name = _("更新案内メール")
        verbose_name_plural = _("更新案内メール")
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["certificate", "stage"], name="expiry_reminder_once_per_stage"
            ),
            models.CheckConstraint(
                condition=Q(stage__in=[30, 7]), name="expiry_reminder_stage_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["sending", "retrying", "sent", "failed", "cancelled"]),
                name="expiry_reminder_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="expiry_reminder_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["sending", "retrying"]) | Q(next_attempt_at__isnull=False),
                name="expiry_reminder_pending_has_next_attempt",
            ),
        ]
        indexes = [
            # The admin's list of the failed ones (or any status), newest first.
            models.Index(fields=["status", "id"], name="expiry_reminder_status"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["sending", "retrying"]),
                name="expiry_reminder_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.certificate.serial} {self.get_stage_display()} {self.get_status_display()}"
