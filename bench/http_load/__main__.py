"""``python -m bench.http_load generate WORK RESULT``: the load generator's process."""

import sys

from bench.http_load.load import generate

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "generate":
        generate(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m bench.http_load generate WORK RESULT")
