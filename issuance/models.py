"""Customers, their users, the notices they receive and the certificates they hold."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from issuance import labels
from issuance.querysets import (
    CertificateQuerySet,
    CustomerQuerySet,
    KihonetUserQuerySet,
    NoticeQuerySet,
)
from issuance.rules import formats


def _regex_check(field: str, pattern: str, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__regex": pattern}), name=name)


class ProductLine(models.Model):
    name = models.CharField(_("商品名"), max_length=100, unique=True)
    display_order = models.PositiveSmallIntegerField(_("表示順"), default=0)

    class Meta:
        verbose_name = _("商品")
        verbose_name_plural = _("商品")
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return self.name


class ServiceDesk(models.Model):
    """A desk of the contact table (照会先), whose staff use the back office (R15)."""

    class Kind(models.TextChoices):
        ONBOARDING = "onboarding", _("ご利用開始前のお客様")
        PRODUCT = "product", _("ご利用開始後のお客様")

    name = models.CharField(_("照会先"), max_length=100, unique=True)
    kind = models.CharField(_("種別"), max_length=20, choices=Kind.choices, default=Kind.PRODUCT)
    phone = models.CharField(
        _("代表電話番号"),
        max_length=20,
        blank=True,
        help_text=_("商品ごとの電話番号は「照会先電話番号」に登録します。"),
    )
    hours = models.CharField(_("受付時間"), max_length=100)
    product_lines = models.ManyToManyField(
        ProductLine, through="DeskContact", related_name="desks", verbose_name=_("担当商品")
    )

    class Meta:
        verbose_name = _("照会先")
        verbose_name_plural = _("照会先")
        ordering = ["kind", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_onboarding(self) -> bool:
        return self.kind == self.Kind.ONBOARDING


class DeskContact(models.Model):
    """One row of the manual's contact table: a product line, a desk and its phone."""

    product_line = models.ForeignKey(
        ProductLine, on_delete=models.PROTECT, related_name="contacts", verbose_name=_("商品名")
    )
    desk = models.ForeignKey(
        ServiceDesk, on_delete=models.PROTECT, related_name="contacts", verbose_name=_("照会先")
    )
    phone = models.CharField(_("電話番号"), max_length=20)

    class Meta:
        verbose_name = _("照会先電話番号")
        verbose_name_plural = _("照会先電話番号")
        ordering = ["product_line__display_order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["product_line", "desk"], name="unique_desk_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.product_line} / {self.desk} {self.phone}"


class Customer(models.Model):
    """A corporate customer of 企保ネット."""

    kihonet_code = models.CharField(
        _("企保ネットコード"),
        max_length=8,
        unique=True,
        validators=[formats.validate_kihonet_code],
    )
    name = models.CharField(_("お客様名"), max_length=200)
    product_lines = models.ManyToManyField(
        ProductLine, related_name="customers", verbose_name=_("ご契約商品")
    )
    started_using = models.BooleanField(
        _("企保ネットご利用開始済み"),
        default=False,
        help_text=_("最初のクライアント証明書が取得されると「はい」になります。"),
    )
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("お客様")
        verbose_name_plural = _("お客様")
        ordering = ["kihonet_code"]
        constraints = [
            _regex_check("kihonet_code", formats.KIHONET_CODE_RE, "customer_kihonet_code_format"),
        ]

    def __str__(self) -> str:
        return f"{self.kihonet_code} {self.name}"


class KihonetUser(models.Model):
    """A person of a customer who logs in to 企保ネット with a client certificate."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="users", verbose_name=_("お客様")
    )
    user_id = models.CharField(
        _("ユーザーID"), max_length=7, unique=True, validators=[formats.validate_user_id]
    )
    management_number = models.CharField(
        _("管理番号"),
        max_length=10,
        db_index=True,
        validators=[formats.validate_management_number],
    )
    email = models.EmailField(_("Eメールアドレス"), db_index=True)
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)

    objects = KihonetUserQuerySet.as_manager()

    class Meta:
        verbose_name = _("ユーザー")
        verbose_name_plural = _("ユーザー")
        ordering = ["user_id"]
        permissions = [("export_data", _("データを出力できる"))]
        constraints = [
            _regex_check("user_id", formats.USER_ID_RE, "user_user_id_format"),
            _regex_check(
                "management_number", formats.MANAGEMENT_NUMBER_RE, "user_management_number_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.management_number})"


class Notice(models.Model):
    """「ユーザーIDのお知らせ」 (branch 001) or 「再発行完了の通知文書」 (002, 003, …)."""

    class Kind(models.TextChoices):
        NEW = "new", _("ユーザーIDのお知らせ")
        REISSUE = "reissue", _("再発行完了の通知文書")

    user = models.ForeignKey(
        KihonetUser, on_delete=models.PROTECT, related_name="notices", verbose_name=_("ユーザー")
    )
    kind = models.CharField(_("種類"), max_length=10, choices=Kind.choices, default=Kind.NEW)
    branch_number = models.CharField(
        _("枝番"),
        max_length=3,
        default=formats.FIRST_BRANCH_NUMBER,
        validators=[formats.validate_branch_number],
    )
    printed_year = models.PositiveSmallIntegerField(_("記載の発行年"))
    registration_year = models.PositiveSmallIntegerField(
        _("登録年"), help_text=_("12月の最終営業日に発行した場合は記載の発行年の翌年。")
    )
    issued_on = models.DateField(_("発行日"))
    email = models.EmailField(_("Eメールアドレス"))
    used_at = models.DateTimeField(_("使用日時"), null=True, blank=True)
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)

    objects = NoticeQuerySet.as_manager()

    class Meta:
        verbose_name = _("通知文書")
        verbose_name_plural = _("通知文書")
        ordering = ["user", "branch_number"]
        permissions = [
            ("reissue_notice", _("再発行できる")),
            ("print_notice", _("通知文書を印刷できる")),
            ("import_notices", _("通知文書ファイルを取り込める")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["user", "branch_number"], name="unique_notice_branch"),
            _regex_check("branch_number", formats.BRANCH_NUMBER_RE, "notice_branch_number_format"),
            models.CheckConstraint(
                condition=Q(printed_year__gte=2000, printed_year__lte=2999),
                name="notice_printed_year_range",
            ),
            models.CheckConstraint(
                condition=Q(registration_year=models.F("printed_year"))
                | Q(registration_year=models.F("printed_year") + 1),
                name="notice_registration_year_rule",
            ),
            models.CheckConstraint(
                condition=~Q(kind="new") | Q(branch_number=formats.FIRST_BRANCH_NUMBER),
                name="notice_new_is_branch_001",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user.user_id}-{self.branch_number} {self.get_kind_display()}"

    @property
    def is_used(self) -> bool:
        return self.used_at is not None

    def accepts_year(self, year: int) -> bool:
        """The printed year is accepted as well as the registration year (R02)."""
        return year in {self.registration_year, self.printed_year}


class Certificate(models.Model):
    class Status(models.TextChoices):
        """A certificate's state, never stored: ``revoked_at`` and ``not_after`` say it (see
        ``status_at``, and ``CertificateQuerySet.in_status`` for the same rule in a query)."""

        VALID = "valid", _("有効")
        REVOKED = "revoked", _("失効")
        EXPIRED = "expired", _("期限切れ")

    user = models.ForeignKey(
        KihonetUser,
        on_delete=models.PROTECT,
        related_name="certificates",
        verbose_name=_("ユーザー"),
    )
    notice = models.ForeignKey(
        Notice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="certificates",
        verbose_name=_("取得に使用した通知文書"),
    )
    renewed_from = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="renewal",
        verbose_name=_("更新元の証明書"),
    )
    # The serial and the public key are unique by the constraints below, not unique=True: that
    # would add a second, LIKE index (varchar_pattern_ops) of random keys to every certificate's
    # insert, and nothing searches these columns by prefix. The fingerprint is unique through
    # the serial (see CertificateQuerySet.holding), so it has no index of its own.
    serial = models.CharField(_("シリアル番号"), max_length=40)
    subject = models.CharField(_("サブジェクト"), max_length=255)
    email = models.EmailField(_("Eメールアドレス"))
    not_before = models.DateTimeField(_("有効期間の開始"))
    not_after = models.DateTimeField(_("有効期限"), db_index=True)
    pem = models.TextField(_("証明書（PEM）"))
    fingerprint = models.CharField(_("フィンガープリント（SHA-256）"), max_length=64)
    public_key_fingerprint = models.CharField(
        _("公開鍵のフィンガープリント（SHA-256）"), max_length=64
    )
    revocation_reason = models.CharField(_("失効理由"), max_length=30, blank=True)
    revoked_at = models.DateTimeField(_("失効日時"), null=True, blank=True)
    created_at = models.DateTimeField(_("発行日時"), default=timezone.now)

    objects = CertificateQuerySet.as_manager()

    # Only on the rows of a query annotated with CertificateQuerySet.renewal_columns() (and
    # auto_renewal_columns()).
    renewal_not_after: datetime | None
    renewal_revoked_at: datetime | None
    auto_renewal_checked_in_at: datetime | None

    class Meta:
        verbose_name = _("クライアント証明書")
        verbose_name_plural = _("クライアント証明書")
        ordering = ["-not_after"]
        permissions = [
            ("revoke_certificate", _("証明書を失効できる")),
            ("resend_reminder", _("更新案内メールを再送できる")),
            ("move_renewal_window", _("更新推奨期間を変更できる（今すぐ更新）")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["serial"], name="certificate_serial_unique"),
            models.UniqueConstraint(
                fields=["public_key_fingerprint"], name="certificate_public_key_fingerprint_unique"
            ),
            _regex_check("serial", formats.SERIAL_RE, "certificate_serial_format"),
            models.CheckConstraint(
                condition=Q(not_after__gt=models.F("not_before")),
                name="certificate_validity_order",
            ),
            models.CheckConstraint(
                condition=Q(fingerprint__regex=r"^[0-9a-f]{64}$")
                & Q(public_key_fingerprint__regex=r"^[0-9a-f]{64}$"),
                name="certificate_fingerprint_format",
            ),
        ]
        indexes = [
            models.Index(
                fields=["not_after"],
                condition=Q(revoked_at__isnull=True),
                name="certificate_unrevoked_expiry",
            ),
            # The CRL reads the revoked certificates that have not expired yet.
            models.Index(
                fields=["not_after"],
                condition=Q(revoked_at__isnull=False),
                name="certificate_revoked_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.serial} {self.subject}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_valid_at(self, at) -> bool:
        return not self.is_revoked and self.not_before <= at < self.not_after

    def status_at(self, at: datetime) -> Certificate.Status:
        """Revoked once ``revoked_at`` is set (also after its expiry), else expired from
        ``not_after`` on, else valid."""
        if self.is_revoked:
            return Certificate.Status.REVOKED
        if self.not_after <= at:
            return Certificate.Status.EXPIRED
        return Certificate.Status.VALID

    def status_label_at(self, at: datetime) -> str:
        """有効, 失効 or 期限切れ."""
        return str(self.status_at(at).label)


class ReissueRecord(models.Model):
    """再発行: the desk gives the user a new notice with the next branch number (R16)."""

    class Reason(models.TextChoices):
        PC_CHANGE = "pc_change", _("パソコンの変更")
        PC_LOST = "pc_lost", _("パソコンの紛失・盗難")
        EXPIRED = "expired", _("有効期限切れ")
        EMAIL_CHANGE = "email_change", _("Eメールアドレスの変更")
        OTHER = "other", _("その他")

    user = models.ForeignKey(
        KihonetUser, on_delete=models.PROTECT, related_name="reissues", verbose_name=_("ユーザー")
    )
    reason = models.CharField(_("再発行理由"), max_length=20, choices=Reason.choices)
    note = models.TextField(_("備考"), blank=True)
    new_email = models.EmailField(_("新しいEメールアドレス"), blank=True)
    new_notice = models.OneToOneField(
        Notice,
        on_delete=models.PROTECT,
        related_name="reissue_record",
        verbose_name=_("再発行した通知文書"),
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("担当者"),
    )
    created_at = models.DateTimeField(_("再発行日時"), default=timezone.now)

    class Meta:
        verbose_name = _("再発行")
        verbose_name_plural = _("再発行")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason="email_change") | ~Q(new_email=""),
                name="reissue_email_change_has_address",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user.user_id} {self.get_reason_display()}"


class AuditEvent(models.Model):
    """Append-only: who (staff, customer or a system job) did what, to what, when, from where."""

    class ActorType(models.TextChoices):
        STAFF = "staff", _("職員")
        CUSTOMER = "customer", _("お客様")
        SYSTEM = "system", _("システム")

    created_at = models.DateTimeField(_("日時"), default=timezone.now, db_index=True)
    actor_type = models.CharField(_("操作者の種別"), max_length=10, choices=ActorType.choices)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("職員"),
    )
    actor = models.CharField(_("操作者"), max_length=150)
    action = models.CharField(_("操作"), max_length=50)
    kihonet_user = models.ForeignKey(
        KihonetUser,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("ユーザー"),
    )
    object_type = models.CharField(_("対象の種類"), max_length=50, blank=True)
    object_id = models.CharField(_("対象"), max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(_("IPアドレス"), null=True, blank=True)
    reason = models.TextField(_("理由"), blank=True)
    detail = models.JSONField(_("詳細"), default=dict, blank=True)

    class Meta:
        verbose_name = _("監査ログ")
        verbose_name_plural = _("監査ログ")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(action__gt=""), name="audit_action_not_empty"),
            models.CheckConstraint(condition=Q(actor__gt=""), name="audit_actor_not_empty"),
        ]
        # The admin filters by action, exactly; a plain index (db_index=True would add a LIKE
        # twin that every event's insert maintains and nothing uses).
        indexes = [models.Index(fields=["action"], name="auditevent_action")]

    def __str__(self) -> str:
        return f"{labels.format_moment(self.created_at)} {self.actor} {labels.audit_action(self.action)}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("An audit event is never changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("An audit event is never deleted.")


class CrlPublication(models.Model):
    """A CRL as published: its number only ever increases (the primary key's sequence)."""

    number = models.BigAutoField(_("CRL番号"), primary_key=True)
    this_update = models.DateTimeField(_("発行日時"))
    next_update = models.DateTimeField(_("次回更新予定"))
    revoked_count = models.PositiveIntegerField(_("失効証明書数"))
    der = models.BinaryField(_("CRL（DER）"))

    class Meta:
        verbose_name = _("証明書失効リスト（CRL）")
        verbose_name_plural = _("証明書失効リスト（CRL）")
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"CRL #{self.number} {labels.format_moment(self.this_update)}"


class Enrollment(models.Model):
    """One acquisition in progress: the six fields matched a notice, a one-time token was given.

    Only the token's SHA-256 digest is stored; the token itself is known to the customer alone.
    """

    notice = models.ForeignKey(
        Notice, on_delete=models.PROTECT, related_name="enrollments", verbose_name=_("通知文書")
    )
    token_digest = models.CharField(_("受付番号（ハッシュ）"), max_length=64, unique=True)
    email = models.EmailField(_("Eメールアドレス"))
    created_at = models.DateTimeField(_("受付日時"), default=timezone.now)
    expires_at = models.DateTimeField(_("有効期限"))
    confirmed_at = models.DateTimeField(_("Eメールアドレス確認日時"), null=True, blank=True)
    certificate = models.OneToOneField(
        Certificate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="enrollment",
        verbose_name=_("発行した証明書"),
    )
    ip_address = models.GenericIPAddressField(_("IPアドレス"), null=True, blank=True)

    class Meta:
        verbose_name = _("新規取得の受付")
        verbose_name_plural = _("新規取得の受付")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.notice} {labels.format_moment(self.created_at)}"

    @property
    def is_completed(self) -> bool:
        return self.certificate_id is not None


class InputLock(models.Model):
    """A lock after repeated failures: of the six fields for one person (企保ネットコード and
    ユーザーID) or from one address, or of a staff member's sign-in.

    This row is the lock: it is enforced while active (until ``locked_until``, unless lifted),
    and staff see and lift this row. The shared cache only counts the attempts (issuance.attempts).
    Locks of kind ``kihonet_code`` (a whole company) are no longer made; old rows are history.
    """

    class Kind(models.TextChoices):
        PERSON = "person", _("ユーザー（企保ネットコード・ユーザーID）")
        IP_ADDRESS = "ip_address", _("IPアドレス")
        STAFF_LOGIN = "staff_login", _("職員のサインイン")
        KIHONET_CODE = "kihonet_code", _("企保ネットコード（会社単位、旧方式）")

    kind = models.CharField(_("種類"), max_length=20, choices=Kind.choices)
    value = models.CharField(
        _("対象"),
        max_length=150,
        db_index=True,
        help_text=_("企保ネットコード、IPアドレス、または職員のユーザー名"),
    )
    user_id = models.CharField(_("ユーザーID"), max_length=16, blank=True, default="")
    locked_at = models.DateTimeField(_("ロック日時"), default=timezone.now)
    locked_until = models.DateTimeField(_("ロック解除予定"))
    lifted_at = models.DateTimeField(_("解除日時"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("解除した職員"),
    )

    class Meta:
        verbose_name = _("入力ロック")
        verbose_name_plural = _("入力ロック")
        ordering = ["-locked_at"]
        permissions = [("lift_input_lock", _("入力ロックを解除できる"))]

    def __str__(self) -> str:
        if self.kind == self.Kind.PERSON:
            return f"{self.get_kind_display()} {self.value} {self.user_id}"
        return f"{self.get_kind_display()} {self.value}"

    def is_active(self, at=None) -> bool:
        return self.lifted_at is None and (at or timezone.now()) < self.locked_until


class MismatchAlert(models.Model):
    """Many mismatches for one company (企保ネットコード) within the window: the desk is alerted
    (dashboard) instead of the company being locked, since anyone who knows the 8-digit code
    could otherwise lock every user of the company out."""

    kihonet_code = models.CharField(_("企保ネットコード"), max_length=8, db_index=True)
    raised_at = models.DateTimeField(_("検知日時"), default=timezone.now, db_index=True)
    failures = models.PositiveIntegerField(_("入力誤りの件数"))
    window_seconds = models.PositiveIntegerField(_("集計期間（秒）"))

    class Meta:
        verbose_name = _("入力誤りの集中")
        verbose_name_plural = _("入力誤りの集中")
        ordering = ["-raised_at"]

    def __str__(self) -> str:
        return f"{self.kihonet_code} {self.failures}"


class RenewalChallenge(models.Model):
    """A one-time challenge the client tool signs with the current certificate's key."""

    class Purpose(models.TextChoices):
        RENEWAL = "renewal", _("更新")
        AUTO_RENEWAL_REPORT = "auto_renewal_report", _("自動更新の報告")

    certificate = models.ForeignKey(
        Certificate,
        on_delete=models.PROTECT,
        related_name="renewal_challenges",
        verbose_name=_("クライアント証明書"),
    )
    challenge_digest = models.CharField(_("チャレンジ（ハッシュ）"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("作成日時"), default=timezone.now)
    expires_at = models.DateTimeField(_("有効期限"))
    used_at = models.DateTimeField(_("使用日時"), null=True, blank=True)
    # A challenge serves the purpose it was given for only: one for the daily report of the
    # auto-renewal, given out before the renewal window too, can never renew.
    purpose = models.CharField(
        _("用途"), max_length=30, choices=Purpose.choices, default=Purpose.RENEWAL
    )

    class Meta:
        verbose_name = _("更新のチャレンジ")
        verbose_name_plural = _("更新のチャレンジ")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.certificate.serial} {labels.format_moment(self.created_at)}"


class StaffProfile(models.Model):
    """A back-office account's desk (R15): its staff see the customers that desk serves."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff_profile",
        verbose_name=_("職員アカウント"),
    )
    desk = models.ForeignKey(
        ServiceDesk,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        verbose_name=_("所属照会先"),
        help_text=_("空欄は所属なし（スーパーバイザーのみ。窓口担当者は何も表示されません）。"),
    )

    class Meta:
        verbose_name = _("職員の所属")
        verbose_name_plural = _("職員の所属")

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.desk or '-'})"


class AutoRenewal(models.Model):
    """The client tool's signed report that it renews this certificate by itself (自動更新),
    and when the PC last checked in."""

    certificate = models.OneToOneField(
        Certificate,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="auto_renewal",
        verbose_name=_("クライアント証明書"),
    )
    enabled = models.BooleanField(_("自動更新"), default=True)
    changed_at = models.DateTimeField(_("設定の変更日時"))
    checked_in_at = models.DateTimeField(_("最終確認日時"))
    ip_address = models.GenericIPAddressField(_("IPアドレス"), null=True, blank=True)

    class Meta:
        verbose_name = _("自動更新")
        verbose_name_plural = _("自動更新")

    def __str__(self) -> str:
        return f"{self.certificate_id} {'on' if self.enabled else 'off'}"


class RenewalWindowMove(models.Model):
    """The CA moved a certificate's suggested renewal time (for example 「今すぐ更新」 after an
    incident); the renewal-info answer follows it, always inside the renewal window (R09)."""

    certificate = models.OneToOneField(
        Certificate,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="renewal_window_move",
        verbose_name=_("クライアント証明書"),
    )
    start = models.DateTimeField(_("更新推奨期間の開始"))
    end = models.DateTimeField(_("更新推奨期間の終了"))
    reason = models.TextField(_("理由"))
    moved_at = models.DateTimeField(_("変更日時"), default=timezone.now)

    class Meta:
        verbose_name = _("更新推奨期間の変更")
        verbose_name_plural = _("更新推奨期間の変更")
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")), name="renewal_window_move_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.certificate_id} {self.start:%Y-%m-%d %H:%M}"
