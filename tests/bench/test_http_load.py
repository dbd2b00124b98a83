"""The pure parts of ``bench http_load``: percentiles, CPU accounting, the result rows, and the
load generator's HTTP client and customers (against a small HTTP server on loopback)."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.http_load import checks, config, cpu, load, report

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- percentiles


def test_p50_p95_of_a_hundred_latencies():
    seconds = [i / 1000 for i in range(100, 0, -1)]  # 1 ms .. 100 ms, in any order

    p50, p95 = report.p50_p95_ms(seconds)

    assert p50 == pytest.approx(50.5)
    assert p95 == pytest.approx(95.05)  # inclusive: 1 + 0.95 x 99 places up the sorted list


def test_p50_p95_of_one_latency_is_that_latency_and_of_none_zero():
    assert report.p50_p95_ms([0.012]) == pytest.approx([12.0, 12.0])
    assert report.p50_p95_ms([]) == [0.0, 0.0]


def test_a_phase_summary_gives_the_flows_and_each_steps_percentiles_in_ms():
    phase = load.Phase("acquisition")
    phase.latencies = [0.010, 0.020, 0.030]
    phase.steps = {"enrollments": [0.004, 0.006], "confirm": [0.002]}
    phase.issued = [["AB", "HA00001"]]
    for _ in range(25):
        phase.error("confirm", "500 " + "x" * 400)

    summary = phase.summary(10.0)

    assert summary["completed"] == 3
    assert summary["p50_ms"] == pytest.approx(20.0)
    assert summary["p95_ms"] == pytest.approx(29.0)
    assert summary["steps"]["enrollments"] == pytest.approx([5.0, 5.9])
    assert summary["steps"]["confirm"] == pytest.approx([2.0, 2.0])
    assert summary["errors"] == 25
    assert len(summary["error_samples"]) == 20  # kept to 20, each cut to 300 characters
    assert all(len(sample) == 300 for sample in summary["error_samples"])
    assert summary["issued"] == [["AB", "HA00001"]]


# ---------------------------------------------------------------- CPU accounting


def test_cpu_delta_counts_a_new_process_from_zero_and_not_one_that_ended():
    start = {"gunicorn": {10: 5.0, 11: 7.0}, "wall": {0: 100.0}}
    end = {"gunicorn": {10: 6.5, 12: 0.25}, "wall": {0: 130.0}}  # 11 ended, 12 started

    assert cpu.cpu_delta(start, end) == {"gunicorn": 1.75, "wall": 30.0}


def _window(**seconds: float) -> dict[str, float]:
    parties = {"gunicorn": 0.0, "postgres": 0.0, "redis": 0.0, "generator": 0.0}
    return {**parties, "machine busy": 0.0, "machine total": 0.0, "wall": 10.0, **seconds}


def test_cpu_note_gives_each_partys_cores_and_the_rest_of_the_machine():
    window = _window(gunicorn=12.0, postgres=3.0, redis=1.0, generator=2.0, **{"machine busy": 19})

    assert report.cpu_note(window) == (
        "CPU (cores) in the window: gunicorn 1.20, postgres 0.30, redis 0.10, generator 0.20, "
        f"anything else 0.10; machine 1.90 of {config.CORES} busy"
    )


def test_cpu_rows_give_the_server_cpu_per_flow_and_the_ceiling_on_idle_cores():
    window = _window(gunicorn=7.0, postgres=2.0, redis=1.0, generator=2.0)

    server, ceiling = report.cpu_rows("acquisition", window, flows=1000)

    assert server.name == "HTTP: acquisition server CPU per flow"
    assert server.value == pytest.approx(10.0)  # (7 + 2 + 1) s / 1,000 flows, in ms
    assert server.note == "gunicorn 7.0 + PostgreSQL 2.0 + Redis 1.0 ms; generator 2.0 ms"
    assert ceiling.value == pytest.approx(config.CORES * 1000 / 12.0)
    assert ceiling.unit == "flows/s"


# ---------------------------------------------------------------- the result rows


def _phase(completed: int, p95_ms: float, errors: int = 0, **more) -> dict:
    return {
        "completed": completed,
        "seconds": 10.0,
        "p50_ms": p95_ms / 2,
        "p95_ms": p95_ms,
        "steps": {"enrollments": [1.0, 2.0]},
        "errors": errors,
        "error_samples": [],
        "started": 0,
        "abandoned": 0,
        "issued": [],
        "renewed": [],
        "exhausted": False,
        **more,
    }


def _result(acquisition: dict, paced: dict, renewal: dict) -> dict:
    return {
        "users": 50,
        "seconds": 10.0,
        "paced_rate": 150.0,
        "acquisition": acquisition,
        "acquisition_paced": paced,
        "renewal": renewal,
        "generator_cpu_seconds": 4.0,
    }


def _rows(result: dict, problems: list[str]) -> dict:
    server = SimpleNamespace(description="gunicorn gthread x 3 workers x 2 threads")
    cpu_windows = {name: _window(gunicorn=5.0, **{"machine busy": 8}) for name in config.PHASES}
    return {row.name: row for row in report.results(result, cpu_windows, problems, server)}


def test_the_rows_meet_the_rate_and_latency_targets_when_the_figures_do(capsys):
    result = _result(_phase(2000, 400.0), _phase(1500, 30.0), _phase(2400, 350.0))

    rows = _rows(result, [])

    rate = rows["HTTP: acquisition flows/s"]
    assert (rate.value, rate.target, rate.met) == (200.0, ">= 150", True)
    assert rate.note.startswith("2,000 flows in 10.0 s; gunicorn gthread x 3 workers x 2 threads")
    paced = rows["HTTP: acquisition p95 at 150 flows/s"]
    assert (paced.value, paced.target, paced.met) == (30.0, "< 100 ms", True)
    assert rows["HTTP: acquisition offered at 150 flows/s, done"].value == 150.0
    assert rows["HTTP: renewal flows/s"].met is None  # no target for renewals
    assert rows["HTTP: errors"].met is True
    assert rows["HTTP: DB consistency problems"].met is True
    assert rows["HTTP: acquisition server CPU per flow"].value == pytest.approx(2.5)
    assert capsys.readouterr().out == ""


def test_the_rows_fail_slow_flows_errors_and_database_problems_and_print_them(capsys):
    paced = _phase(900, 250.0, errors=2, error_samples=["acquisition_paced confirm: 500"])
    result = _result(_phase(1000, 900.0, exhausted=True), paced, _phase(800, 700.0, errors=1))

    rows = _rows(result, ["3 notices have more than one certificate"])

    assert rows["HTTP: acquisition flows/s"].met is False
    assert rows["HTTP: acquisition flows/s"].note.endswith("(ran out of prepared data!)")
    assert rows["HTTP: acquisition p95 at 150 flows/s"].met is False
    errors = rows["HTTP: errors"]
    assert (errors.value, errors.met) == (3, False)
    assert errors.note.startswith("acquisition 0, paced 2, renewal 1")
    problems = rows["HTTP: DB consistency problems"]
    assert (problems.value, problems.met) == (1, False)
    assert problems.note == "3 notices have more than one certificate"
    assert capsys.readouterr().out == (
        "  error: acquisition_paced confirm: 500\n"
        "  DB check: 3 notices have more than one certificate\n"
    )


def test_both_acquisition_phases_count_as_one_for_the_database_checks():
    result = _result(
        _phase(2, 1.0, started=3, abandoned=1, issued=[["A1", "HA1"], ["A2", "HA2"]]),
        _phase(1, 1.0, started=1, abandoned=0, issued=[["A3", "HA3"]]),
        _phase(0, 1.0),
    )

    assert checks.both_acquisition_phases(result) == {
        "issued": [["A1", "HA1"], ["A2", "HA2"], ["A3", "HA3"]],
        "started": 4,
        "abandoned": 1,
    }


# ---------------------------------------------------------------- the generator


class _Server:
    """A small HTTP/1.1 server on loopback: answers each POST with its path and body as JSON,
    closing the connection when the path ends in /close; counts the connections it accepted."""

    def __init__(self) -> None:
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            lines = head.decode().split("\r\n")
            path = lines[0].split(" ")[1]
            length = next(
                int(v) for k, _, v in (x.partition(": ") for x in lines) if k == "Content-Length"
            )
            body = await reader.readexactly(length)
            answer = json.dumps({"path": path, "got": json.loads(body) if body else None}).encode()
            close = path.endswith("/close")
            status = "404 Not Found" if "missing" in path else "201 Created"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(answer)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
            if close:
                break
        writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_):
        self.server.close()
        await self.server.wait_closed()


def test_the_client_keeps_its_connection_alive_until_the_server_closes_it():
    async def scenario():
        async with _Server() as server:
            connection = load.Connection("127.0.0.1", server.port)
            first = await connection.post("/api/v1/enrollments", {"user_id": "HA00001"})
            second = await connection.post("/api/v1/x/close", None)
            third = await connection.post("/api/v1/after", None)
            connection.close()
            return server.connections, first, second, third

    connections, first, second, third = asyncio.run(scenario())

    assert first == (201, {"path": "/api/v1/enrollments", "got": {"user_id": "HA00001"}})
    assert second == (201, {"path": "/api/v1/x/close", "got": None})
    assert third[0] == 201
    assert connections == 2  # one kept for the first two requests, a new one after the close


def test_a_step_with_another_status_than_expected_is_an_error_of_the_phase():
    async def scenario():
        async with _Server() as server:
            connection = load.Connection("127.0.0.1", server.port)
            phase = load.Phase("renewal")
            body = await load._step(connection, phase, True, "challenge", "/missing", {}, 201)
            connection.close()
            return body, phase

    body, phase = asyncio.run(scenario())

    assert body is None
    assert phase.errors == 1
    assert phase.error_samples[0].startswith('renewal challenge: 404 {"path": "/missing"')
    assert len(phase.steps["challenge"]) == 1  # its time is measured all the same


def test_paced_customers_take_every_flow_due_and_count_from_when_it_was_due():
    done: list[int] = []

    async def flow(connection, item, phase, measured) -> bool:
        await asyncio.sleep(0.001)
        done.append(item)
        return True

    phase = load.Phase("acquisition_paced")
    work = {"host": "127.0.0.1", "port": 1, "users": 3}  # the flow here opens no connection
    seconds = asyncio.run(
        load._paced_customers(work, flow, iter(range(30)), phase, 0.2, rate=100.0, measured=True)
    )

    assert sorted(done) == list(range(20))  # 0.2 s x 100 flows/s, in the order they fell due
    assert len(phase.latencies) == 20
    assert not phase.exhausted
    assert seconds >= 0.19


def test_customers_that_run_out_of_prepared_data_say_so():
    async def flow(connection, item, phase, measured) -> bool:
        await asyncio.sleep(0)
        return True

    phase = load.Phase("renewal")
    work = {"host": "127.0.0.1", "port": 1, "users": 2}
    asyncio.run(load._customers(work, flow, iter(range(5)), phase, 5.0, measured=True))

    assert len(phase.latencies) == 5
    assert phase.exhausted


def test_the_generator_runs_as_the_packages_main_module():
    result = subprocess.run(
        [sys.executable, "-m", "bench.http_load"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.strip() == "usage: python -m bench.http_load generate WORK RESULT"
