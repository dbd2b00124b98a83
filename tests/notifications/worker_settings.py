"""Settings of the Celery workers that the integration tests start as subprocesses.

kihonet's own settings (database, broker, SMTP from the environment the test passes), with a
queue of the test's own, a result backend so that the test can wait for a task, and short waits
between retries.
"""

import os

from kihonet.settings import *  # noqa: F403
from kihonet.settings import CELERY_BROKER_URL

CELERY_TASK_DEFAULT_QUEUE = os.environ["KIHONET_TEST_QUEUE"]
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_RESULT_EXTENDED = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

KIHONET_REMINDER_BATCH_SIZE = int(os.environ.get("KIHONET_REMINDER_BATCH_SIZE", "1000"))
KIHONET_REMINDER_RETRY_BASE_SECONDS = 1
KIHONET_REMINDER_MAX_ATTEMPTS = 5

DEFAULT_FROM_EMAIL = "kihonet@example.jp"
KIHONET_BASE_URL = "https://kihonet.example.jp"
