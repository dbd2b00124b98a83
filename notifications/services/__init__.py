"""Writes of the reminders (R10): one module per job, the claim-then-send protocol in all of them.

- ``claims``: the records (``ExpiryReminder``) as a ledger: claim a (certificate, stage) once,
  re-claim it for a retry, hand it back, cancel it, give up an abandoned one.
- ``delivery``: the claimed records' mails over one SMTP connection, each recorded as sent,
  failed or waiting for a retry.
- ``job``: the daily job and its wake-ups: which certificates are due, claims, delivery, retries.
- ``resend``: the desk's resend of the guidance, with its audit events.

Reads are in ``notifications.selectors``, the mails themselves in ``notifications.emails``.
"""
