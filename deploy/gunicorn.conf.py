"""gunicorn for kihonet: `gunicorn -c deploy/gunicorn.conf.py kihonet.wsgi`.

Threaded workers keep nginx's upstream connections alive (its `keepalive 16`), so a request
costs no TCP set-up. One worker more than the machine has cores, two threads each: measured by
`make bench` (http_load) as the layout with the highest rate and the shortest tail on two cores.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Longer than nginx's upstream keepalive_timeout (60 s), so that nginx, not gunicorn, closes an
# idle connection and never sends a request on one that gunicorn is closing.
keepalive = 75
timeout = 30
graceful_timeout = 30
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# The request line only: never query strings, never headers; and every line of the access and
# error logs passes kihonet's redacting filter (the enrollment token in the path becomes ***).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
logger_class = "kihonet.gunicorn_logging.RedactingLogger"
# No control socket: its default path (~/.gunicorn/gunicorn.ctl) would be shared by every
# instance of the user, and nothing here uses it (systemd sends signals).
control_socket_disable = True
forwarded_allow_ips = os.environ.get("KIHONET_TRUSTED_PROXIES", "127.0.0.1")
