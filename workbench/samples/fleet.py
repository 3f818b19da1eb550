"""A sample fleet campaign: k policies, several arms with one planted outlier, sim and real.

The same simulated pick-and-place as the standard campaign (:mod:`workbench.samples.simulation`),
recorded as MCAP, with these factors per run:

* ``model.version``: ``ckpt-1`` … ``ckpt-k``, each with a planted real success rate;
* ``environment.domain``: ``sim`` or ``real``; simulated runs succeed a little more
  often than real ones, except one policy with a planted sim-to-real gap (sim flatters
  it, so sim ranks it above a policy that is better in reality);
* ``hardware.unit``: real runs are spread over ``arm-1`` … ``arm-u``; one arm (the
  planted outlier) misses grasps far more often; simulated runs have unit ``sim``;
* ``scenario.seed``: real runs reuse the seeds of simulated ones (paired), and a seed
  is as hard for every policy, arm and domain (common random numbers), so a simulated
  run predicts the real run of its seed.

:func:`generate_fleet` writes ``fleet/*.mcap`` and ``fleet/truth.json`` (the planted rates,
the outlier arm, the policy with the gap, and every run's outcome).

Examples
--------
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     truth = generate_fleet(tmp, policies=2, sim_seeds=2, real_seeds=1, units=2)
>>> len(truth["runs"]), truth["outlier_unit"], sorted(truth["policies"])
(6, 'arm-2', ['ckpt-1', 'ckpt-2'])
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.model import ConfigError

__all__ = ["FLEET_DIR", "generate_fleet"]

FLEET_DIR = "fleet"
"""Folder of the fleet campaign inside the output folder."""

_RATES = (0.9, 0.78, 0.66, 0.54, 0.42, 0.3)  # real success of ckpt-1 … (at most 6 policies)
_SIM_BONUS = 0.05  # sim succeeds this much more often than reality …
_GAP_POLICY = 3  # … except ckpt-3, which sim flatters by this much:
_GAP = 0.3
_OUTLIER_MISS = 0.7  # the outlier arm's success is this much lower, relatively
_PROFILE = {"/joint_states": 20, "/joint_commands": 10, "/imu": 20, "/ft_sensor": 20, "/tf": 5,
            "/wrist_camera/image_raw/compressed": 1}
_SUCCESS_OTHERWISE = 0.97  # success of a run whose grasp does not miss (rare drops on rubber)


def _p_miss(success: float) -> float:
    return min(0.98, max(0.0, 1.0 - success / _SUCCESS_OTHERWISE))


def _job(args: tuple[Any, ...]) -> dict[str, Any]:
    from workbench.samples.campaign import EPOCH_NS, GENERATOR_VERSION
    from workbench.samples.simulation import RunSpec, simulate
    from workbench.samples.writers import write_mcap

    out, index, policy, domain, unit, unit_key, seed_no, success, campaign_seed = args  # unit_key 0: shared draws
    spec = RunSpec(robot="arm-a", lighting="bright", surface="rubber", version="policy-v1", scenario_seed=seed_no,
                   campaign_seed=campaign_seed, run_index=10_000 + index, start_ns=EPOCH_NS + index * 600 * 10**9,
                   rates_hz=dict(_PROFILE), p_miss=_p_miss(success), unit_key=unit_key)
    run = simulate(spec, image_size=(32, 24), jpeg_quality=40)
    name = f"{policy}_{domain}_{unit}_s{seed_no:02d}"
    rel = f"{FLEET_DIR}/{name}.mcap"
    factors = {"hardware": {"unit": unit, "robot": "arm-a"}, "environment": {"domain": domain},
               "model": {"version": policy}, "scenario": {"task": "pick_place", "seed": str(seed_no)}}
    write_mcap(out / rel, run, {**factors, "workbench.sample": {"generator": "workbench.samples.fleet",
                                                                 "generator_version": GENERATOR_VERSION}},
               library=f"workbench-samples/{GENERATOR_VERSION}", chunk_size=256 * 1024)
    return {"name": name, "file": rel, "policy": policy, "domain": domain, "unit": unit, "seed": seed_no,
            "planted_success": round(success, 4), "outcome": run.plan.outcome}


def generate_fleet(
    out_dir: str | Path,
    *,
    policies: int = 4,
    units: int = 5,
    sim_seeds: int = 40,
    real_seeds: int = 25,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the fleet campaign into ``out_dir/fleet`` (see the module doc).

    Parameters
    ----------
    out_dir
        Output folder (``fleet/`` is created in it; its earlier files are replaced).
    policies
        Number of policies (2–6).
    units
        Arms the real runs are spread over (≥ 2); the last one is the planted outlier.
    sim_seeds, real_seeds
        Simulated and real runs per policy; real runs use the first *real_seeds* seeds
        of the simulated ones (``real_seeds ≤ sim_seeds``).
    seed
        Campaign seed (same seed, same files).
    workers
        Processes.
    progress
        Called as ``progress(done, total)`` after each run.

    Returns
    -------
    dict
        The truth, also written to ``fleet/truth.json``.
    """
    if not 2 <= policies <= len(_RATES):
        msg = f"policies must be between 2 and {len(_RATES)}, got {policies!r}"
        raise ConfigError(msg)
    if units < 2 or real_seeds < 1 or sim_seeds < real_seeds:
        msg = f"need units ≥ 2 and 1 ≤ real_seeds ≤ sim_seeds, got units={units}, real_seeds={real_seeds}, sim_seeds={sim_seeds}"
        raise ConfigError(msg)
    out = Path(out_dir)
    folder = out / FLEET_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.mcap"):
        old.unlink()
    names = [f"ckpt-{i + 1}" for i in range(policies)]
    arms = [f"arm-{u + 1}" for u in range(units)]
    outlier = arms[-1]
    gap = names[min(_GAP_POLICY, policies) - 1]
    jobs: list[tuple[Any, ...]] = []
    for p, policy in enumerate(names):
        real_rate = _RATES[p]
        sim_rate = min(0.99, real_rate + _SIM_BONUS + (_GAP if policy == gap else 0.0))
        for s in range(sim_seeds):
            jobs.append((out, len(jobs), policy, "sim", "sim", 0, s, sim_rate, seed))
        for s in range(real_seeds):
            unit = arms[(s + p) % units]  # each arm meets different seeds for each policy
            rate = real_rate * (1 - _OUTLIER_MISS) if unit == outlier else real_rate
            jobs.append((out, len(jobs), policy, "real", unit, 0, s, rate, seed))
    records: list[dict[str, Any]] = []
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for rec in pool.map(_job, jobs, chunksize=8):
                records.append(rec)
                if progress:
                    progress(len(records), len(jobs))
    else:
        for job in jobs:
            records.append(_job(job))
            if progress:
                progress(len(records), len(jobs))
    truth = {
        "generator": "workbench.samples.fleet", "seed": seed,
        "policies": {n: {"real_success": _RATES[i], "sim_success": round(min(0.99, _RATES[i] + _SIM_BONUS + (_GAP if n == gap else 0.0)), 4)}
                     for i, n in enumerate(names)},
        "sim_to_real_gap_policy": gap, "outlier_unit": outlier, "outlier_extra_miss": _OUTLIER_MISS,
        "units": arms, "sim_seeds": sim_seeds, "real_seeds": real_seeds, "runs": records,
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth
