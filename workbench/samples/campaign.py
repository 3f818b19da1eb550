"""The sample campaign: the factor grid, the planted faults, :func:`generate` and its truth.

Layout written by :func:`generate` (paths relative to ``out_dir``)::

    campaign/<robot>_<lighting>_<surface>_<version>_s<seed>.mcap   one run each
    campaign/<...>_truncated.mcap                                  planted fault
    rosbag1/<...>.bag + <...>.bag.meta.yaml                        a few runs as ROS 1 bags
    truth.json                                                     what was planted
    README.md                                                      the campaign, described
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.model import ConfigError
from workbench.samples import readme
from workbench.samples.simulation import (
    EFFECTS,
    IMU_CLOCK_OFFSET_NS,
    LATENCY_MS,
    RunSpec,
    simulate,
)
from workbench.samples.writers import TOPICS, write_mcap, write_rosbag1

__all__ = [
    "CAMPAIGN_DIR",
    "EPOCH_NS",
    "GENERATOR_VERSION",
    "GRID",
    "PROFILES",
    "README_FILE",
    "ROSBAG1_DIR",
    "RUN_SPACING_S",
    "SEEDS_PER_CELL",
    "TRUTH_FILE",
    "checkpoint_id",
    "generate",
]

GENERATOR_VERSION = "1"
"""Bumped whenever the same seed would give different bytes."""

CAMPAIGN_DIR = "campaign"
ROSBAG1_DIR = "rosbag1"
TRUTH_FILE = "truth.json"
README_FILE = "README.md"

GRID: dict[str, tuple[str, ...]] = {
    "hardware.robot": ("arm-a", "arm-b"),
    "environment.lighting": ("bright", "dim"),
    "environment.surface": ("rubber", "steel"),
    "model.version": ("policy-v1", "policy-v2"),
}
"""The full factorial grid of the standard campaign (16 cells)."""

SEEDS_PER_CELL = 10
"""Scenario seeds per cell in the standard campaign (16 × 10 = 160 runs)."""

EPOCH_NS = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
"""Start of run 0 (2026-06-01T00:00:00Z); run *i* starts ``i × RUN_SPACING_S`` later."""
RUN_SPACING_S = 600

_CAMERA = "/wrist_camera/image_raw/compressed"

PROFILES: dict[str, dict[str, Any]] = {
    "compact": {
        "rates_hz": {
            "/joint_states": 50,
            "/joint_commands": 25,
            "/imu": 100,
            "/ft_sensor": 50,
            "/tf": 10,
            _CAMERA: 4,
        },
        "image_size": (64, 48),
        "jpeg_quality": 50,
        "chunk_size": 256 * 1024,
    },
    "full": {
        "rates_hz": {
            "/joint_states": 200,
            "/joint_commands": 100,
            "/imu": 400,
            "/ft_sensor": 500,
            "/tf": 50,
            _CAMERA: 10,
        },
        "image_size": (64, 48),
        "jpeg_quality": 75,
        "chunk_size": 4 * 1024 * 1024,
    },
}
"""Sensor rates (Hz), camera settings and MCAP chunk size (uncompressed bytes) per
profile; ``/events`` is sparse."""

# Planted faults: which run (index modulo the number of runs) and what.
CAMERA_GAP_RUN = 1
CAMERA_GAP_S = (
    1.5,
    3.0,
)  # seconds after the run start: frames in this window are dropped
IMU_JUMP_RUN = 2
IMU_JUMP = (2.0, 0.5)  # at 2.0 s after the start, the IMU stamps jump forward by 0.5 s
TRUNCATED_RUN = 3
TRUNCATE_FRACTION = 0.5  # cut inside the chunk at about this fraction of the file
ROSBAG1_RUNS = (0, 5, 10, 15)  # cells spanning robot, lighting, surface and version


def checkpoint_id(version: str) -> str:
    """A sha256-like checkpoint id derived from the model version.

    >>> checkpoint_id("policy-v1")[:12]
    'bd15e6a2e60f'
    """
    return hashlib.sha256(
        f"workbench-samples/checkpoint/{version}".encode()
    ).hexdigest()


def _cells() -> list[dict[str, str]]:
    keys = list(GRID)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*GRID.values())
    ]


def _factors(cell: dict[str, str], scenario_seed: int) -> dict[str, dict[str, str]]:
    return {
        "hardware": {"robot": cell["hardware.robot"]},
        "environment": {
            "lighting": cell["environment.lighting"],
            "surface": cell["environment.surface"],
        },
        "model": {
            "version": cell["model.version"],
            "checkpoint": checkpoint_id(cell["model.version"]),
        },
        "scenario": {"task": "pick_place", "seed": str(scenario_seed)},
    }


def _check_out_dir(out: Path) -> None:
    """Refuse to mix a new campaign with files this generator did not write."""
    previous: set[str] = set()
    truth = out / TRUTH_FILE
    if truth.exists():
        try:
            old = json.loads(truth.read_text())
            previous = {r["file"] for r in old.get("runs", [])}
            previous |= {b["file"] for b in old.get("rosbag1", [])}
            previous |= {b["sidecar"] for b in old.get("rosbag1", [])}
            previous |= {
                f["file"]
                for f in old.get("faults", [])
                if f.get("kind") == "truncated_file"
            }
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            msg = f"{str(truth)!r} is not a sample-campaign truth file ({err}); choose an empty --out"
            raise ConfigError(msg) from err
    stray = []
    for sub in (CAMPAIGN_DIR, ROSBAG1_DIR):
        folder = out / sub
        if folder.is_dir():
            stray += [
                f"{sub}/{p.name}"
                for p in sorted(folder.iterdir())
                if f"{sub}/{p.name}" not in previous
            ]
    if stray:
        shown = ", ".join(stray[:5]) + (" …" if len(stray) > 5 else "")
        msg = (
            f"{str(out)!r} holds files the sample generator did not write ({shown}); "
            "choose an empty --out or remove them"
        )
        raise ConfigError(msg)
    for rel in sorted(previous):
        (out / rel).unlink(missing_ok=True)


@dataclass(frozen=True)
class _Job:
    """One run to make (picklable, for worker processes)."""

    out: Path
    index: int
    n_runs: int
    width: int
    seed: int
    profile: str
    duration_s: float | None
    rosbag1: bool


def _make_run(
    job: _Job,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """Simulate and write run *job*; returns its truth record, its faults, its bag entry."""
    settings = PROFILES[job.profile]
    rates = dict(settings["rates_hz"])
    cells = _cells()
    cell = cells[job.index % len(cells)]
    scenario_seed = job.index // len(cells)
    factors = _factors(cell, scenario_seed)
    stem = "_".join(cell.values()) + f"_s{scenario_seed:0{job.width}d}"
    rel = f"{CAMPAIGN_DIR}/{stem}.mcap"
    spec = RunSpec(
        robot=cell["hardware.robot"],
        lighting=cell["environment.lighting"],
        surface=cell["environment.surface"],
        version=cell["model.version"],
        scenario_seed=scenario_seed,
        campaign_seed=job.seed,
        run_index=job.index,
        start_ns=EPOCH_NS + job.index * RUN_SPACING_S * 1_000_000_000,
        rates_hz=rates,
        duration_s=job.duration_s,
        camera_gap_s=CAMERA_GAP_S if job.index == CAMERA_GAP_RUN % job.n_runs else None,
        imu_jump=IMU_JUMP if job.index == IMU_JUMP_RUN % job.n_runs else None,
    )
    run = simulate(
        spec, image_size=settings["image_size"], jpeg_quality=settings["jpeg_quality"]
    )
    sample_meta = {
        "generator": "workbench.samples",
        "generator_version": GENERATOR_VERSION,
        "profile": job.profile,
        "campaign_seed": str(job.seed),
        "run_index": str(job.index),
        "rates_hz": json.dumps(rates, sort_keys=True),
    }
    library = f"workbench-samples/{GENERATOR_VERSION}"
    if job.rosbag1:
        # an extra run (its own seed), recorded as a ROS 1 bag only: no run is counted twice
        rel = f"{ROSBAG1_DIR}/{stem}.bag"
        counts = write_rosbag1(job.out / rel, run)
        _write_sidecar(job.out / f"{rel}.meta.yaml", factors)
    else:
        counts = write_mcap(
            job.out / rel,
            run,
            {**factors, "workbench.sample": sample_meta},
            library=library,
            chunk_size=settings["chunk_size"],
        )
    plan = run.plan
    record: dict[str, Any] = {
        "index": job.index,
        "name": stem,
        "file": rel,
        "factors": factors,
        "start_ns": spec.start_ns,
        "end_ns": run.end_ns,
        "duration_s": round((run.end_ns - spec.start_ns) / 1e9, 6),
        "outcome": plan.outcome,
        "failure_reason": plan.reason,
        "slips": plan.slips,
        "recoveries": plan.recoveries,
        "drops": sum(1 for _, e in plan.events if e["kind"] == "drop"),
        "time_to_success_s": plan.time_to_success_s,
        "events": [json.loads(p) | {"time_ns": t} for t, p in run.events],
        "message_counts": counts,
    }
    faults: list[dict[str, Any]] = []
    if spec.camera_gap_s is not None:
        cam = run.topics[_CAMERA]
        a, b = spec.camera_gap_s
        faults.append(
            {
                "kind": "camera_gap",
                "run": stem,
                "file": rel,
                "topic": _CAMERA,
                "start_ns": spec.start_ns + round(a * 1e9),
                "end_ns": spec.start_ns + round(b * 1e9),
                "frames_dropped": int(cam.seq[-1] + 1 - len(cam.seq)),
                "description": (
                    f"camera frames captured between {a} s and {b} s after the start are "
                    "missing (their sequence numbers are skipped); log-time gap "
                    f"≥ {b - a - 1 / rates[_CAMERA]:.2f} s"
                ),
            }
        )
    if spec.imu_jump is not None:
        at, jump = spec.imu_jump
        faults.append(
            {
                "kind": "imu_clock_jump",
                "run": stem,
                "file": rel,
                "topic": "/imu",
                "start_ns": spec.start_ns + round(at * 1e9),
                "end_ns": run.end_ns,
                "jump_s": jump,
                "description": (
                    f"from {at} s after the start the /imu header stamps are {jump} s ahead "
                    "(on top of the constant offset); log times stay continuous"
                ),
            }
        )
    bag = None
    if job.rosbag1:
        bag = {"file": rel, "sidecar": f"{rel}.meta.yaml", "run": stem, "index": job.index}
        record["format"] = "rosbag1"
    else:
        record["format"] = "mcap"
    return record, faults, bag


def generate(
    out_dir: str | Path,
    *,
    runs: int | None = None,
    duration_s: float | None = None,
    seed: int = 0,
    profile: str = "compact",
    progress: bool | Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Write a deterministic sample campaign of simulated pick-and-place runs.

    Parameters
    ----------
    out_dir
        Folder to write into (created). Files of an earlier campaign listed in its
        ``truth.json`` are replaced; any other file in ``campaign/`` or ``rosbag1/``
        is refused with :class:`~workbench.model.ConfigError`.
    runs
        ``None`` for the standard campaign (the 16-cell grid × 10 scenario seeds =
        160 runs); ``N`` to cycle through the grid for *N* runs (run *i* is cell
        ``i % 16`` with scenario seed ``i // 16``).
    duration_s
        ``None``: each run lasts until its task is over (about 4–8.5 s). A number:
        every run records exactly that long (≥ 3 s); a task not finished by then
        fails with ``timeout``.
    seed
        Campaign seed; the same seed gives byte-identical files.
    profile
        ``"compact"`` (the committed samples) or ``"full"`` (realistic rates);
        see :data:`PROFILES`.
    progress
        ``True`` for a progress bar on stderr, or a callback called as
        ``progress(done, total)`` after each run.
    workers
        Processes to use; runs are independent, so the files do not depend on it.

    Returns
    -------
    dict
        The truth (also written to ``truth.json``): campaign parameters, per-run
        factors and outcomes, planted effects and faults.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     truth = generate(tmp, runs=2, seed=1)
    >>> [r["file"] for r in truth["runs"]][:2]
    ['campaign/arm-a_bright_rubber_policy-v1_s00.mcap', 'campaign/arm-a_bright_rubber_policy-v2_s00.mcap']
    """
    if profile not in PROFILES:
        msg = f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}"
        raise ConfigError(msg)
    cells = _cells()
    n_runs = len(cells) * SEEDS_PER_CELL if runs is None else runs
    if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 1:
        msg = (
            f"runs must be a positive integer or None (standard campaign), got {runs!r}"
        )
        raise ConfigError(msg)
    if duration_s is not None and not (3.0 <= float(duration_s) <= 3600.0):
        msg = f"duration_s must be between 3 and 3600 seconds (or None), got {duration_s!r}"
        raise ConfigError(msg)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        msg = f"seed must be a non-negative integer, got {seed!r}"
        raise ConfigError(msg)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        msg = f"workers must be a positive integer, got {workers!r}"
        raise ConfigError(msg)
    settings = PROFILES[profile]
    rates = dict(settings["rates_hz"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_out_dir(out)
    (out / CAMPAIGN_DIR).mkdir(exist_ok=True)
    (out / ROSBAG1_DIR).mkdir(exist_ok=True)

    # the ROS 1 bag runs are extra runs after the MCAP ones (next seed of their cells)
    bag_runs = {n_runs + i for i in ROSBAG1_RUNS}
    width = max(2, len(str((n_runs + max(ROSBAG1_RUNS)) // len(cells))))
    jobs = [
        _Job(
            out=out,
            index=index,
            n_runs=n_runs,
            width=width,
            seed=seed,
            profile=profile,
            duration_s=None if duration_s is None else float(duration_s),
            rosbag1=index in bag_runs,
        )
        for index in [*range(n_runs), *sorted(bag_runs)]
    ]
    records: list[dict[str, Any]] = []
    faults: list[dict[str, Any]] = []
    bags: list[dict[str, Any]] = []

    with _progress(progress, len(jobs)) as advance:

        def collect(
            result: tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None],
        ) -> None:
            record, run_faults, bag = result
            records.append(record)
            faults.extend(run_faults)
            if bag is not None:
                bags.append(bag)
            advance(len(records), record["name"])

        if workers == 1:
            for job in jobs:
                collect(_make_run(job))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for result in pool.map(_make_run, jobs, chunksize=4):
                    collect(result)

    source = records[TRUNCATED_RUN % n_runs]
    src_path = out / source["file"]
    data = src_path.read_bytes()
    cut = _truncation_point(data)
    trunc_rel = f"{CAMPAIGN_DIR}/{source['name']}_truncated.mcap"
    (out / trunc_rel).write_bytes(data[:cut])
    faults.append(
        {
            "kind": "truncated_file",
            "run": source["name"],
            "file": trunc_rel,
            "source": source["file"],
            "topic": None,
            "size_bytes": cut,
            "source_size_bytes": len(data),
            "start_ns": None,
            "end_ns": None,
            "description": (
                f"a copy of {source['file']} cut after {cut} of {len(data)} bytes, in the "
                "middle of a chunk: no summary, no footer, the chunks before the cut intact"
            ),
        }
    )
    for fault in faults:
        for rec in records:
            if rec["name"] == fault["run"]:
                rec.setdefault("faults", []).append(fault["kind"])

    truth = {
        "generator": "workbench.samples",
        "generator_version": GENERATOR_VERSION,
        "campaign": {
            "seed": seed,
            "profile": profile,
            "runs": len(records),
            "mcap_runs": n_runs,
            "standard": runs is None,
            "duration_s": duration_s,
            "grid": {k: list(v) for k, v in GRID.items()},
            "seeds_per_cell": SEEDS_PER_CELL if runs is None else None,
            "epoch": "2026-06-01T00:00:00Z",
            "epoch_ns": EPOCH_NS,
            "run_spacing_s": RUN_SPACING_S,
            "rates_hz": rates,
            "image_size": list(settings["image_size"]),
            "jpeg_quality": settings["jpeg_quality"],
            "chunk_size": settings["chunk_size"],
            "topics": TOPICS,
            "latency_ms": {
                k: {"base": v[0], "jitter_mean": v[1]} for k, v in LATENCY_MS.items()
            },
            "imu_clock_offset_ms": IMU_CLOCK_OFFSET_NS / 1e6,
            "time_to_success": "seconds from start_ns (the first joint_commands stamp) to the success event",
        },
        "effects": EFFECTS,
        "summary": _summary(records),
        "runs": records,
        "rosbag1": bags,
        "faults": faults,
    }
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    (out / README_FILE).write_text(readme.render(truth, out))
    return truth


def _truncation_point(data: bytes) -> int:
    """Offset in the middle of a chunk's compressed data near the middle of the file.

    Never the first of several chunks, so the chunks before the cut can be salvaged;
    cutting inside a chunk makes every mcap reader fail with an ``McapError``.
    """
    import io

    from mcap.reader import make_reader

    summary = make_reader(io.BytesIO(data)).get_summary()
    assert summary is not None
    chunks = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)
    target = len(data) * TRUNCATE_FRACTION
    pick = next(
        (c for c in chunks if c.chunk_start_offset + c.chunk_length > target),
        chunks[-1],
    )
    if pick is chunks[0] and len(chunks) > 1:
        pick = chunks[1]
    return pick.chunk_start_offset + pick.chunk_length // 2


@contextmanager
def _progress(
    progress: bool | Callable[[int, int], None] | None, total: int
) -> Iterator[Callable[[int, str], None]]:
    """``advance(done, label)``: a rich progress bar, the user's callback, or nothing."""
    if callable(progress):
        callback = progress
        yield lambda done, label: callback(done, total)
        return
    if not progress:
        yield lambda done, label: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]samples[/bold] {task.description:<36.36}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("", total=total)
        yield lambda done, label: bar.update(task, completed=done, description=label)


def _write_sidecar(path: Path, factors: dict[str, dict[str, str]]) -> None:
    import yaml

    from workbench.model import parse_scalar

    # typed like the MCAP metadata values once read (scenario.seed is a number)
    typed = {g: {k: parse_scalar(v) for k, v in kv.items()} for g, kv in factors.items()}
    text = (
        "# Factors of the ROS 1 bag beside this file (ROS 1 bags have no metadata records).\n"
        + yaml.safe_dump(typed, sort_keys=True, default_flow_style=False)
    )
    path.write_text(text)


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Success counts per cell and per hardware × lighting × version, mean times per version."""

    def key(rec: dict[str, Any], names: tuple[str, ...]) -> str:
        f = rec["factors"]
        values = {
            "robot": f["hardware"]["robot"],
            "lighting": f["environment"]["lighting"],
            "surface": f["environment"]["surface"],
            "version": f["model"]["version"],
        }
        return "/".join(values[n] for n in names)

    def table(names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rec in records:
            row = out.setdefault(
                key(rec, names), {"runs": 0, "successes": 0, "slips": 0}
            )
            row["runs"] += 1
            row["successes"] += rec["outcome"] == "success"
            row["slips"] += rec["slips"]
        for row in out.values():
            row["success_rate"] = round(row["successes"] / row["runs"], 4)
        return dict(sorted(out.items()))

    times: dict[str, list[float]] = {}
    for rec in records:
        if rec["time_to_success_s"] is not None:
            times.setdefault(key(rec, ("version",)), []).append(
                rec["time_to_success_s"]
            )
    return {
        "by_cell": table(("robot", "lighting", "surface", "version")),
        "by_robot_lighting_version": table(("robot", "lighting", "version")),
        "by_surface": table(("surface",)),
        "mean_time_to_success_s": {
            k: round(sum(v) / len(v), 4) for k, v in sorted(times.items())
        },
    }
