"""The result rows of the printed table, from the generator's result, the CPU windows and the
database checks; the percentiles of the measured latencies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.core import Result, percentiles
from bench.http_load.config import ACQUISITION_P95_TARGET_MS, ACQUISITION_RATE_TARGET, CORES, PHASES

if TYPE_CHECKING:
    from bench.http_load.server import Gunicorn


def p50_p95_ms(values: list[float]) -> list[float]:
    """p50 and p95 of ``values`` (seconds), in ms; a single value is both, none gives zeros."""
    if len(values) < 2:
        return [values[0] * 1000, values[0] * 1000] if values else [0.0, 0.0]
    p50, p95 = percentiles(values)
    return [p50 * 1000, p95 * 1000]


def cpu_note(window: dict[str, float]) -> str:
    wall = window["wall"]
    parties = ("gunicorn", "postgres", "redis", "generator")
    parts = [f"{name} {window[name] / wall:.2f}" for name in parties]
    busy = window["machine busy"] / wall
    others = busy - sum(window[name] for name in parties) / wall
    return (
        f"CPU (cores) in the window: {', '.join(parts)}, anything else {others:.2f}; "
        f"machine {busy:.2f} of {CORES} busy"
    )


def cpu_rows(name: str, window: dict[str, float], flows: int) -> list:
    """What one flow costs in CPU, and how many flows/s the machine's cores could give if the
    server and the generator had them to themselves (the other sessions' load taken out)."""
    server = (window["gunicorn"] + window["postgres"] + window["redis"]) / flows * 1000
    generator = window["generator"] / flows * 1000
    ceiling = CORES * 1000 / (server + generator)
    return [
        Result(
            f"HTTP: {name} server CPU per flow",
            server,
            "ms",
            note=f"gunicorn {window['gunicorn'] / flows * 1000:.1f} + PostgreSQL "
            f"{window['postgres'] / flows * 1000:.1f} + Redis "
            f"{window['redis'] / flows * 1000:.1f} ms; generator {generator:.1f} ms",
        ),
        Result(
            f"HTTP: {name} CPU ceiling on {CORES} idle cores",
            ceiling,
            "flows/s",
            note=f"{CORES} cores / (server + generator CPU per flow): the rate if nothing "
            "else ran on the machine",
        ),
    ]


def results(result: dict, cpu: dict[str, dict], problems: list[str], server: Gunicorn) -> list:
    acquisition, paced, renewal = (result[name] for name in PHASES)
    errors = acquisition["errors"] + paced["errors"] + renewal["errors"]
    samples = acquisition["error_samples"] + paced["error_samples"] + renewal["error_samples"]
    for sample in samples[:10]:
        print(f"  error: {sample}", flush=True)
    for problem in problems:
        print(f"  DB check: {problem}", flush=True)
    setup = f"{server.description}, {result['users']} customers, {result['seconds']:g} s"

    rows = []
    for name, phase in (("acquisition", acquisition), ("renewal", renewal)):
        flows_per_second = phase["completed"] / phase["seconds"]
        acq = name == "acquisition"
        rows += [
            Result(
                f"HTTP: {name} flows/s",
                flows_per_second,
                "flows/s",
                f">= {ACQUISITION_RATE_TARGET:g}" if acq else "",
                flows_per_second >= ACQUISITION_RATE_TARGET if acq else None,
                note=f"{phase['completed']:,} flows in {phase['seconds']:.1f} s; {setup}; "
                f"closed loop, no pause between flows{_exhausted(phase)}",
            ),
            Result(f"HTTP: {name} p50, closed loop", phase["p50_ms"], "ms", note=_steps(phase)),
            Result(
                f"HTTP: {name} p95, closed loop",
                phase["p95_ms"],
                "ms",
                note=cpu_note(cpu[name]) if name in cpu else "",
            ),
        ]
        if name in cpu and phase["completed"]:
            rows += cpu_rows(name, cpu[name], phase["completed"])
        if acq:
            rows += _paced_rows(result, cpu)
    rows += [
        Result(
            "HTTP: errors",
            errors,
            "count",
            "0",
            errors == 0,
            note=f"acquisition {acquisition['errors']}, paced {paced['errors']}, "
            f"renewal {renewal['errors']} "
            "(any answer other than the expected 2xx, or a connection error)",
        ),
        Result(
            "HTTP: DB consistency problems",
            len(problems),
            "count",
            "0",
            not problems,
            note="; ".join(problems)
            or "one certificate per notice, one renewal per "
            "certificate, every 201 in the DB, no enrollment lost",
        ),
        Result(
            "HTTP: load generator CPU",
            result["generator_cpu_seconds"],
            "s",
            note="the generator's own CPU time (CSR generation included), on the same "
            f"{CORES} cores as the server",
        ),
    ]
    return rows


def _paced_rows(result: dict, cpu: dict[str, dict]) -> list:
    """The latency target, at the target rate: flows offered at a fixed rate (open loop)."""
    phase = result["acquisition_paced"]
    offered = result["paced_rate"]
    achieved = phase["completed"] / phase["seconds"]
    p95 = phase["p95_ms"]
    return [
        Result(
            f"HTTP: acquisition offered at {offered:g} flows/s, done",
            achieved,
            "flows/s",
            note=f"{phase['completed']:,} flows in {phase['seconds']:.1f} s; one due every "
            f"{1000 / offered:.1f} ms, taken by the first of {result['users']} customers "
            f"who is free{_exhausted(phase)}",
        ),
        Result(
            f"HTTP: acquisition p50 at {offered:g} flows/s",
            phase["p50_ms"],
            "ms",
            note=_steps(phase),
        ),
        Result(
            f"HTTP: acquisition p95 at {offered:g} flows/s",
            p95,
            "ms",
            f"< {ACQUISITION_P95_TARGET_MS:g} ms",
            p95 < ACQUISITION_P95_TARGET_MS,
            note="from when each flow was due (a wait for a free customer counts); "
            + (cpu_note(cpu["acquisition_paced"]) if "acquisition_paced" in cpu else ""),
        ),
    ]


def _steps(phase: dict) -> str:
    return ", ".join(
        f"{step} p50 {v[0]:.1f} / p95 {v[1]:.1f} ms" for step, v in phase["steps"].items()
    )


def _exhausted(phase: dict) -> str:
    return " (ran out of prepared data!)" if phase["exhausted"] else ""
