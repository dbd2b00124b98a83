"""gunicorn's logger for kihonet (``logger_class`` in deploy/gunicorn.conf.py).

gunicorn's access and error logs do not go through Django's logging settings, so they get the
same filter here: the enrollment token in ``/api/v1/enrollments/{token}/...`` (valid for 15
minutes, enough to take the customer's certificate), other secrets and full e-mail addresses
never reach a line, whatever ``access_log_format`` says.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from kihonet.logging import RedactingFilter


class RedactingLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(existing, RedactingFilter) for existing in log.filters):
                log.addFilter(RedactingFilter())
