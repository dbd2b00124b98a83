"""Auto-renewal simulated over the real services, on a simulated clock (time-machine).

10,000 users get certificates (``issue_certificate``) in waves over three years; each PC is
switched on on 80 % of working days (seeded random, from a log-on between 8:30 and 9:30 until
18:00) and off on other days; half of the users have auto-renewal on. Then every day of the
three years of expiries is played:

- 09:00: the reminder selectors (``due_certificates``) give the 30-day and 7-day mails (R10);
  a user without auto-renewal acts on a mail with a set probability, on their next day at
  the PC, and renews through the real renewal service (challenge, signature, CSR);
- the tool of a user with auto-renewal runs at log-on and at its daily time: it asks the real
  renewal-info selector for the window, picks a random moment in it and renews (the real
  service again, at that simulated instant) at its first run after that moment.

A certificate that reaches its expiry without a renewal locks its user out (R08, R16). The
renewals per hour at the peak are counted for the spread windows that the tool uses, and, on
the same PCs and days, for windows that all open when R09 opens (no spreading). The users,
customers and certificates of the bench are deleted at the start of each run.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.core import Result, require_bench_database

N_USERS = int(os.environ.get("BENCH_AUTO_RENEW_USERS", "10000"))
SEED = 20261201
JST = ZoneInfo("Asia/Tokyo")
FIRST_ISSUE_DAY = date(2030, 1, 7)
WAVES = 8  # issuance waves over three years, each over five working days
WAVE_DAYS = 5
PC_ON_SHARE = 0.8
AUTO_SHARE = 0.5
ACTS_ON_30_DAY_MAIL = 0.5  # users without auto-renewal: chance to act on each mail
ACTS_ON_7_DAY_MAIL = 0.6

CUSTOMER_CODE_BASE = 96_000_000
USER_PREFIX = "Y"
USERS_PER_CUSTOMER = 10


@dataclass
class SimUser:
    index: int
    auto: bool
    daily_minute: int  # the tool's daily run, minutes after midnight
    certificate_pk: int = 0
    key: object = None
    pem: str = ""
    serial: str = ""
    not_after: datetime | None = None
    opens_at: datetime | None = None
    chosen: datetime | None = None  # the tool's moment inside the suggested window
    baseline: datetime | None = None  # the same, for a window opening with R09 (no spread)
    renewed_at: datetime | None = None
    baseline_renewed_at: datetime | None = None
    pending_mail: bool = False
    mailed: set = None


def _key_and_csr():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kihonet")]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def _delete_bench_rows() -> None:
    from issuance.models import (
        AuditEvent,
        Certificate,
        Customer,
        Enrollment,
        KihonetUser,
        Notice,
        RenewalChallenge,
    )
    from notifications.models import ExpiryReminder

    require_bench_database()
    users = KihonetUser.objects.filter(
        customer__kihonet_code__startswith=str(CUSTOMER_CODE_BASE)[:2], user_id__startswith="Y"
    )
    certificates = Certificate.objects.filter(user__in=users)
    AuditEvent.objects.filter(kihonet_user__in=users).delete()
    RenewalChallenge.objects.filter(certificate__in=certificates).delete()
    # ``bench reminders`` on the same database mails these certificates too.
    ExpiryReminder.objects.filter(certificate__in=certificates).delete()
    Enrollment.objects.filter(notice__user__in=users).delete()
    certificates.filter(renewed_from__isnull=False).delete()
    certificates.delete()
    Notice.objects.filter(user__in=users).delete()
    users.delete()
    Customer.objects.filter(kihonet_code__startswith=str(CUSTOMER_CODE_BASE)[:2]).delete()


def _issue_days() -> list[date]:
    from issuance.rules.business_days import is_business_day

    days, start = [], FIRST_ISSUE_DAY
    for wave in range(WAVES):
        day = start + timedelta(days=wave * 3 * 365 // WAVES)
        wave_days = []
        while len(wave_days) < WAVE_DAYS:
            if is_business_day(day):
                wave_days.append(day)
            day += timedelta(days=1)
        days.append(wave_days)
    return days


def _make_users(rng: random.Random) -> list[SimUser]:
    import time_machine

    from issuance import audit
    from issuance.models import Customer, KihonetUser
    from issuance.rules import renewal as renewal_rules
    from issuance.services.certificates import issue_certificate

    customers = Customer.objects.bulk_create(
        Customer(
            kihonet_code=f"{CUSTOMER_CODE_BASE + n:08d}",
            name=f"自動更新ベンチ株式会社{n}",
            started_using=True,
        )
        for n in range(N_USERS // USERS_PER_CUSTOMER + 1)
    )
    rows = KihonetUser.objects.bulk_create(
        KihonetUser(
            customer=customers[n // USERS_PER_CUSTOMER],
            user_id=f"{USER_PREFIX}{n:06d}",
            management_number=f"AR{n:08d}",
            email=f"y{n}@bench-auto-renew.example.jp",
        )
        for n in range(N_USERS)
    )
    waves = _issue_days()
    actor = audit.Actor.system("bench auto_renew")
    users = []
    for n, row in enumerate(rows):
        day = rng.choice(rng.choice(waves))
        moment = datetime(day.year, day.month, day.day, 9, tzinfo=JST) + timedelta(
            minutes=rng.randrange(8 * 60)
        )
        key, csr = _key_and_csr()
        with time_machine.travel(moment, tick=False):
            certificate = issue_certificate(user=row, csr_data=csr, actor=actor, now=moment)
        user = SimUser(
            index=n,
            auto=rng.random() < AUTO_SHARE,
            daily_minute=rng.randrange(10 * 60, 16 * 60),
            certificate_pk=certificate.pk,
            key=key,
            pem=certificate.pem,
            serial=certificate.serial,
            not_after=certificate.not_after,
            opens_at=renewal_rules.renewal_opens_at(certificate.not_after),
            mailed=set(),
        )
        users.append(user)
    return users


def _renew(user: SimUser, moment: datetime) -> None:
    """What the tool's ``renew`` sends, through the real renewal service at ``moment``."""
    import base64

    import time_machine

    from issuance.pki import pop
    from issuance.services import renewal

    with time_machine.travel(moment, tick=False):
        _issued, challenge = renewal.create_challenge(user.pem)
        signature = base64.b64encode(pop.sign_challenge(user.key, challenge.encode())).decode()
        renewal.renew(
            certificate_pem=user.pem,
            challenge=challenge,
            signature=signature,
            csr_data=_key_and_csr()[1],
            ip_address="127.0.0.1",
        )
    user.renewed_at = moment


def _runs(day: date, draw: float, user: SimUser) -> list[datetime]:
    """The tool's runs that day: at log-on (8:30-9:30) and at its daily time, PC on until 18:00;
    none when the PC stays off (``draw`` >= the share of days on)."""
    if draw >= PC_ON_SHARE:
        return []
    logon = datetime(day.year, day.month, day.day, 8, 30, tzinfo=JST) + timedelta(
        minutes=int(draw / PC_ON_SHARE * 60)
    )
    daily = datetime(day.year, day.month, day.day, tzinfo=JST) + timedelta(
        minutes=user.daily_minute
    )
    return [logon, daily] if daily > logon else [logon]


def _simulate(users: list[SimUser], rng: random.Random) -> dict:
    from issuance.models import Certificate
    from issuance.rules.business_days import is_business_day
    from issuance.selectors.certificates import renewal_info_of
    from notifications.selectors import Stage, daily_run_time, due_certificates

    by_pk = {u.certificate_pk: u for u in users}
    first = min(u.opens_at for u in users).date() - timedelta(days=1)
    last = max(u.not_after for u in users).date() + timedelta(days=1)
    pending = sorted(users, key=lambda u: u.opens_at)
    active: list[SimUser] = []
    renewals = {"spread": Counter(), "unspread": Counter()}
    mails = Counter()
    day = first
    while day <= last:
        run_at = daily_run_time(day)
        # R10: the day's mails from the real reminder selectors.
        for stage in (Stage.DAYS_30, Stage.DAYS_7):
            after = None
            while True:
                batch = due_certificates(at=run_at, stage=stage, limit=2000, after=after)
                if not batch:
                    break
                after = (batch[-1].not_after, batch[-1].pk)
                for certificate in batch:
                    user = by_pk.get(certificate.pk)
                    if user is None or stage in user.mailed:
                        continue
                    user.mailed.add(stage)
                    mails[stage] += 1
                    chance = ACTS_ON_30_DAY_MAIL if stage == Stage.DAYS_30 else ACTS_ON_7_DAY_MAIL
                    if not user.auto and user.renewed_at is None and rng.random() < chance:
                        user.pending_mail = True
        day_end = datetime(day.year, day.month, day.day, tzinfo=JST) + timedelta(days=1)
        while pending and pending[0].opens_at < day_end:
            user = pending.pop(0)
            active.append(user)
            if user.auto:
                info = renewal_info_of(Certificate.objects.get(pk=user.certificate_pk), run_at)
                window = info.window
                user.chosen = window.start + (window.end - window.start) * rng.random()
                user.baseline = user.opens_at
        if is_business_day(day):
            draws = {id(u): rng.random() for u in active}
            for user in active:
                runs = _runs(day, draws[id(user)], user)
                runs = [r for r in runs if r < user.not_after]
                if not runs:
                    continue
                if user.auto:
                    if user.baseline_renewed_at is None:
                        due = [r for r in runs if r >= user.baseline]
                        if due:
                            user.baseline_renewed_at = due[0]
                            renewals["unspread"][due[0].replace(minute=0)] += 1
                    if user.renewed_at is None:
                        due = [r for r in runs if r >= user.chosen]
                        if due:
                            _renew(user, due[0])
                            renewals["spread"][due[0].replace(minute=0)] += 1
                elif user.pending_mail and user.renewed_at is None:
                    moment = runs[0] + timedelta(minutes=rng.randrange(240))
                    if moment < user.not_after:
                        _renew(user, moment)
                        renewals["manual"] = renewals.get("manual", 0) + 1
                        user.pending_mail = False
        active = [u for u in active if u.renewed_at is None and u.not_after > day_end]
        day += timedelta(days=1)
    return {"renewals": renewals, "mails": mails}


def run() -> list[Result]:
    from django.test import override_settings

    from issuance import ca
    from issuance.models import Certificate

    started = time.perf_counter()
    rng = random.Random(SEED)  # noqa: S311 (a seeded simulation, not a secret)
    with tempfile.TemporaryDirectory() as workdir:
        with override_settings(
            KIHONET_CA_DIR=Path(workdir) / "ca",
            KIHONET_CA_PASSPHRASE="bench auto-renew",  # noqa: S106 (a throw-away CA)
            KIHONET_RENEWAL_START_DATE=date(2026, 1, 1),
            KIHONET_RENEWAL_REVOKES_OLD=False,
        ):
            ca.reset()
            import time_machine

            with time_machine.travel(datetime(2029, 12, 1, tzinfo=JST), tick=False):
                ca.create()
            _delete_bench_rows()
            print(f"  issuing {N_USERS:,} certificates in {WAVES} waves ...", flush=True)
            users = _make_users(rng)
            issued = time.perf_counter()
            print(f"  issued in {issued - started:.1f} s; simulating ...", flush=True)
            outcome = _simulate(users, rng)
            ca.reset()
    elapsed = time.perf_counter() - started
    locked = Counter()
    originals = [u.certificate_pk for u in users]
    not_renewed = set(
        Certificate.objects.filter(pk__in=originals).not_renewed().values_list("pk", flat=True)
    )
    for user in users:
        if user.certificate_pk in not_renewed:
            locked[user.auto] += 1
    auto_count = sum(u.auto for u in users)
    renewals = outcome["renewals"]
    peak_spread = max(renewals["spread"].values(), default=0)
    peak_unspread = max(renewals["unspread"].values(), default=0)
    return [
        Result(
            "users locked out by expiry, auto-renewal on",
            locked[True],
            "users",
            "0",
            locked[True] == 0,
            note=f"of {auto_count:,} with auto-renewal on",
        ),
        Result(
            "users locked out by expiry, auto-renewal off",
            locked[False],
            "users",
            note=(
                f"of {N_USERS - auto_count:,}; they act on the 30-day / 7-day mail with "
                f"{ACTS_ON_30_DAY_MAIL:.0%} / {ACTS_ON_7_DAY_MAIL:.0%}; "
                f"{renewals.get('manual', 0):,} renewed by hand"
            ),
        ),
        Result(
            "auto-renewals per hour at the peak, spread windows",
            peak_spread,
            "per hour",
            note=f"{sum(renewals['spread'].values()):,} auto-renewals through the service",
        ),
        Result(
            "auto-renewals per hour at the peak, no spreading",
            peak_unspread,
            "per hour",
            note="same PCs and days, every window opening with R09",
        ),
        Result(
            "auto-renewal simulation, wall time",
            elapsed,
            "s",
            note=(
                f"{N_USERS:,} users, {outcome['mails'][30]:,} 30-day and "
                f"{outcome['mails'][7]:,} 7-day mails from the selectors"
            ),
        ),
    ]
