"""gunicorn for kihonet: `gunicorn -c deploy/gunicorn.conf.py kihonet.wsgi`."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 30
graceful_timeout = 30
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# The request line only: never query strings with tokens, never headers.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
forwarded_allow_ips = os.environ.get("KIHONET_TRUSTED_PROXIES", "127.0.0.1")
