"""HDF5 files: robomimic / robosuite demonstrations, and a generic fallback.

robomimic / robosuite layout
----------------------------
A group ``data`` holding groups ``demo_<n>`` → one run per demo (key ``"demo_<n>"``).
Each dataset of a demo whose first axis has the demo's length becomes a stream named
after its path inside the demo (``actions``, ``states``, ``obs.robot0_eef_pos`` …)
with one variable named after the dataset. ``next_obs/*`` repeats ``obs/*`` shifted
by one step and is left out unless ``include_next_obs=True`` (listed in ``skipped``).
Zero-width datasets (shape ``(N, 0)``, written by robosuite 0.x) hold no values and are
listed in ``skipped``.

Time is synthetic: step ``i`` is at ``i / rate`` seconds, the rate being the
``rate_hz`` option, else ``control_freq`` from the ``env_args`` attribute, else
:data:`DEFAULT_RATE_HZ`. ``extra["clock"] == "synthetic"`` and ``extra["time"]``
says which rate was used and where it came from.

Factors: ``scenario.task`` is the environment name (``env_args.env_name``,
``env_info.env_name`` or the ``env`` attribute); ``hardware.robot`` the robots
(``env_kwargs.robots`` / ``env_info.robots``; for robosuite 0.x names such as
``SawyerLift`` the robot prefix); ``hardware.controller`` the controller type;
``environment.simulator`` / ``environment.simulator_version`` from ``env_args.type`` /
``repository_version``; ``scenario.split`` from the ``mask`` group (robomimic filter
keys ``train``/``valid``); ``scenario.demo`` the demo's number (``demo_7`` → 7, an int;
the group name when it has no number). Each other attribute of the demo group that
holds a scalar or a short one-line text becomes ``scenario.<attribute>``, except
:data:`DEMO_BOOKKEEPING_ATTRS` (``num_samples``, ``model_file``: the MuJoCo XML or its
file name); arrays, long texts and JSON texts (robosuite's ``ep_meta``) are left out and
named in ``extra["demo_attrs_left_out"]``. Every attribute is kept in ``extra``.

Generic fallback
----------------
Any other HDF5 file is one run. In each group, a 1-D numeric dataset named ``time``,
``timestamp``, ``timestamps``, ``t`` or ``stamp`` gives the time axis (unit inferred by
magnitude, see :func:`workbench.io.table.to_ns`) of the datasets of that group whose
first axis has the same length; other datasets with a leading axis get synthetic time
(``rate_hz``, default :data:`DEFAULT_RATE_HZ`) and are named in
``extra["synthetic_time"]``. Compound datasets become one variable per numeric field
(a ``time``-named field gives their time). Scalar datasets go to ``extra["scalars"]``;
non-numeric datasets are listed in ``skipped``.

Examples
--------
>>> from pathlib import Path
>>> Hdf5Reader().guess_can_open(Path("missing.hdf5"))  # claims existing files only
False
>>> sorted(Hdf5Reader().read.__kwdefaults__.items())
[('include_next_obs', False), ('rate_hz', None)]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from workbench.io.registry import ReaderEntrypoint, RunData, scalar_factors
from workbench.io.table import to_ns
from workbench.model import ReaderError, Scalar, parse_scalar, stream_name

if TYPE_CHECKING:
    import h5py
    import xarray as xr

__all__ = [
    "DATA_GROUP",
    "DEFAULT_RATE_HZ",
    "DEMO_BOOKKEEPING_ATTRS",
    "DEMO_PREFIX",
    "TIME_NAMES",
    "Hdf5Reader",
]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
SUFFIXES = {".hdf5", ".h5", ".hdf", ".he5"}
DATA_GROUP = "data"
"""robomimic/robosuite: the group holding the demos."""
DEMO_PREFIX = "demo_"
"""robomimic/robosuite: prefix of each demo group."""
DEMO_BOOKKEEPING_ATTRS: tuple[str, ...] = ("num_samples", "model_file")
"""Demo-group attributes that never become factors: the step count, and the MuJoCo
model (robomimic stores the whole XML, robosuite 0.x the name of its file)."""
MASK_GROUP = "mask"
"""robomimic: filter keys (``train``, ``valid`` …) listing demo names."""
DEFAULT_RATE_HZ = 20.0
"""Step rate of synthetic time when the file gives none (robomimic's default control rate)."""
TIME_NAMES: tuple[str, ...] = (
    "time",
    "timestamp",
    "timestamps",
    "t",
    "stamp",
    "time_ns",
)
"""Dataset names that give the time axis of their group in the generic layout."""
KNOWN_ROBOTS: tuple[str, ...] = (
    "Sawyer",
    "Baxter",
    "Panda",
    "Jaco",
    "Kinova3",
    "IIWA",
    "UR5e",
)
"""robosuite robot names, used to split 0.x env names such as ``SawyerLift``."""


# --------------------------------------------------------------------------- helpers


def _attr_value(value: Any) -> Any:
    """An HDF5 attribute as plain Python (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return (
            [_attr_value(v) for v in value.tolist()]
            if value.dtype.kind in "OSU"
            else value.tolist()
        )
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(obj: h5py.HLObject) -> dict[str, Any]:
    return {str(k): _attr_value(v) for k, v in obj.attrs.items()}


def _json_attr(attrs: dict[str, Any], key: str) -> dict[str, Any]:
    raw = attrs.get(key)
    if not isinstance(raw, str):
        return {}
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _dims_for(
    name: str, shape: tuple[int, ...], dtype: np.dtype
) -> tuple[list[str], dict[str, list[str]]]:
    """Dimension names for an array of *shape* (first axis = time), guessed from its name."""
    low = name.lower()
    if len(shape) == 1:
        return ["time"], {}
    if len(shape) == 2:
        width = shape[1]
        if width == 4 and "quat" in low:
            return ["time", "quat"], {"quat": ["x", "y", "z", "w"]}
        if "joint" in low:
            return ["time", "joint"], {}
        if width == 3 and re.search(r"(pos|vel|acc|force|torque|gyro|ang)", low):
            return ["time", "axis"], {"axis": ["x", "y", "z"]}
        return ["time", "dim_1"], {}
    if len(shape) == 4 and dtype == np.uint8 and shape[3] in (1, 3, 4):
        return ["time", "y", "x", "channel"], {}
    if len(shape) == 3 and ("image" in low or "depth" in low):
        return ["time", "y", "x"], {}
    return ["time"] + [f"dim_{i}" for i in range(1, len(shape))], {}


def _synthetic_time(n: int, rate_hz: float) -> np.ndarray:
    return np.round(np.arange(n, dtype=np.float64) * (1e9 / rate_hz)).astype(np.int64)


def _robots(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return None


# --------------------------------------------------------------------------- reader


class Hdf5Reader(ReaderEntrypoint):
    """HDF5: robomimic/robosuite demos (one run per demo) or generic datasets (one run)."""

    name: ClassVar[str] = "hdf5"
    description: ClassVar[str] = (
        "HDF5 file: robomimic/robosuite demos or generic time series (.hdf5, .h5)"
    )
    url: ClassVar[str] = "https://robomimic.github.io/docs/datasets/overview.html"
    version: ClassVar[str] = "1"

    def guess_can_open(self, path: Path) -> bool:
        """Claim ``.hdf5``/``.h5``/``.hdf``/``.he5`` files and files with the HDF5 signature."""
        if not path.is_file():
            return False
        if path.suffix.lower() in SUFFIXES:
            return True
        with open(path, "rb") as fh:
            return fh.read(8) == HDF5_MAGIC

    def read(
        self,
        path: Path,
        *,
        rate_hz: float | None = None,
        include_next_obs: bool = False,
    ) -> Iterator[RunData]:
        """Yield one run per demo (robomimic/robosuite) or one run for the file.

        Parameters
        ----------
        rate_hz
            Step rate of synthetic time; ``None`` → ``control_freq`` from ``env_args``,
            else :data:`DEFAULT_RATE_HZ`.
        include_next_obs
            Also turn robomimic's ``next_obs/*`` (``obs`` shifted by one step) into streams.
        """
        import h5py

        p = str(path)
        if rate_hz is not None and not rate_hz > 0:
            msg = f"rate_hz must be a positive number, got {rate_hz!r}"
            raise ReaderError(msg)
        if not path.is_file():
            msg = f"{p!r}: no such file"
            raise ReaderError(msg)
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head != HDF5_MAGIC:
            msg = (
                f"{p!r}: not an HDF5 file (signature {head!r}, expected {HDF5_MAGIC!r})"
            )
            raise ReaderError(msg)
        try:
            fh5 = h5py.File(path, "r")
        except OSError as err:
            msg = f"{p!r}: cannot open HDF5 file: {err}"
            raise ReaderError(msg) from err
        with fh5:
            try:
                demos = self._demo_names(fh5)
                runs = (
                    [
                        self._demo_run(fh5, d, p, rate_hz, include_next_obs)
                        for d in demos
                    ]
                    if demos
                    else [self._generic_run(fh5, p, rate_hz)]
                )
            except (OSError, KeyError, ValueError, RuntimeError, TypeError) as err:
                msg = f"{p!r}: cannot read HDF5 content (corrupt or truncated?): {err}"
                raise ReaderError(msg) from err
        yield from runs

    # ----------------------------------------------------------------- robomimic

    @staticmethod
    def _demo_names(fh5: h5py.File) -> list[str]:
        import h5py

        data = fh5.get(DATA_GROUP)
        if not isinstance(data, h5py.Group):
            return []
        names = [
            k
            for k in data
            if k.startswith(DEMO_PREFIX) and isinstance(data.get(k), h5py.Group)
        ]

        def order(name: str) -> tuple[int, str]:
            tail = name[len(DEMO_PREFIX) :]
            return (int(tail), name) if tail.isdigit() else (1 << 62, name)

        return sorted(names, key=order)

    def _demo_run(
        self,
        fh5: h5py.File,
        demo: str,
        p: str,
        rate_hz: float | None,
        include_next_obs: bool,
    ) -> RunData:
        import h5py

        data = fh5[DATA_GROUP]
        group = data[demo]
        data_attrs = _attrs(data)
        env_args = _json_attr(data_attrs, "env_args")
        env_info = _json_attr(data_attrs, "env_info")
        raw_kwargs = env_args.get("env_kwargs")
        env_kwargs: dict[str, Any] = raw_kwargs if isinstance(raw_kwargs, dict) else {}
        bad_attrs = [
            {
                "topic": f"{DATA_GROUP}.attrs.{key}",
                "reason": "attribute is not a JSON object",
                "count": 1,
            }
            for key, parsed in (("env_args", env_args), ("env_info", env_info))
            if isinstance(data_attrs.get(key), str) and not parsed
        ]

        # ---- time
        if rate_hz is not None:
            rate, rate_source = float(rate_hz), "option rate_hz"
        elif (
            isinstance(env_kwargs.get("control_freq"), int | float)
            and env_kwargs["control_freq"] > 0
        ):
            rate, rate_source = (
                float(env_kwargs["control_freq"]),
                "env_args.env_kwargs.control_freq",
            )
        elif (
            isinstance(env_info.get("control_freq"), int | float)
            and env_info["control_freq"] > 0
        ):
            rate, rate_source = float(env_info["control_freq"]), "env_info.control_freq"
        else:
            rate, rate_source = DEFAULT_RATE_HZ, "default (no control_freq in the file)"

        datasets: list[tuple[str, h5py.Dataset]] = []
        group.visititems(
            lambda name, obj: (
                datasets.append((name, obj)) if isinstance(obj, h5py.Dataset) else None
            )
        )
        demo_attrs = _attrs(group)
        n = demo_attrs.get("num_samples")
        if not isinstance(n, int):
            lengths = [
                d.shape[0]
                for name, d in datasets
                if d.ndim >= 1 and name in ("actions", "states")
            ]
            lengths = lengths or [d.shape[0] for _, d in datasets if d.ndim >= 1]
            n = max(lengths) if lengths else 0
        time_ns = _synthetic_time(n, rate)

        streams: dict[str, xr.Dataset] = {}
        skipped: list[dict[str, Any]] = list(bad_attrs)
        scalars: dict[str, Any] = {}
        for name, dset in sorted(datasets):
            if name.startswith("next_obs/") and not include_next_obs:
                skipped.append(
                    {
                        "topic": f"{demo}/{name}",
                        "reason": "next_obs repeats obs shifted by one step (include_next_obs=False)",
                        "count": int(dset.shape[0]) if dset.ndim else 1,
                    }
                )
                continue
            if dset.ndim == 0:
                scalars[name] = _attr_value(dset[()])
                continue
            if dset.shape[0] != n:
                skipped.append(
                    {
                        "topic": f"{demo}/{name}",
                        "reason": f"first axis {dset.shape[0]} differs from the demo length {n}",
                        "count": int(dset.shape[0]),
                    }
                )
                continue
            ds, problem = _dataset_stream(name, dset, time_ns, f"{demo}/{name}")
            if ds is None:
                skipped.append(
                    {
                        "topic": f"{demo}/{name}",
                        "reason": problem,
                        "count": int(dset.shape[0]),
                    }
                )
                continue
            ds.attrs["time"] = "synthetic"
            streams[stream_name(name)] = ds

        # ---- factors
        env_name = (
            env_args.get("env_name")
            or env_info.get("env_name")
            or data_attrs.get("env")
        )
        robots = _robots(env_kwargs.get("robots")) or _robots(env_info.get("robots"))
        derived: dict[str, str] = {}
        if robots is None and isinstance(env_name, str):
            for robot in KNOWN_ROBOTS:
                if env_name.startswith(robot) and len(env_name) > len(robot):
                    robots = robot
                    derived["hardware.robot"] = (
                        f"prefix of env name {env_name!r} (robosuite 0.x)"
                    )
                    break
        controller = env_kwargs.get("controller_configs") or env_info.get(
            "controller_configs"
        )
        hardware: dict[str, Scalar] = {}
        if robots:
            hardware["robot"] = robots
        if isinstance(controller, dict) and isinstance(controller.get("type"), str):
            hardware["controller"] = controller["type"]
        environment: dict[str, Scalar] = {}
        sim_type = env_args.get("type")
        if sim_type == 1 or "repository_version" in data_attrs:
            environment["simulator"] = "robosuite"
        elif isinstance(sim_type, int):
            environment["simulator"] = {2: "gym", 3: "ig_momart"}.get(
                sim_type, f"type_{sim_type}"
            )
        if isinstance(data_attrs.get("repository_version"), str):
            environment["simulator_version"] = data_attrs["repository_version"]
        scenario: dict[str, Scalar] = {}
        if isinstance(env_name, str) and env_name:
            scenario["task"] = env_name
        masks = _masks(fh5)
        member_of = sorted(k for k, demos in masks.items() if demo in demos)
        for split in ("train", "valid", "test"):
            if split in member_of:
                scenario["split"] = split
                break
        tail = demo[len(DEMO_PREFIX) :]
        scenario["demo"] = int(tail) if tail.isdigit() else demo
        per_demo, attrs_left_out = scalar_factors(
            {k: v for k, v in demo_attrs.items() if k not in DEMO_BOOKKEEPING_ATTRS},
            reserved=scenario,
        )
        scenario.update(per_demo)

        extra: dict[str, Any] = {
            "layout": "robomimic",
            "clock": "synthetic",
            "time": {"synthetic": True, "rate_hz": rate, "rate_source": rate_source},
            "data_attrs": data_attrs,
            "demo_attrs": demo_attrs,
            "num_samples": n,
        }
        if env_args:
            extra["env_args"] = env_args
        if env_info:
            extra["env_info"] = env_info
        if member_of:
            extra["masks"] = member_of
        if attrs_left_out:
            extra["demo_attrs_left_out"] = attrs_left_out
        if scalars:
            extra["scalars"] = scalars
        if derived:
            extra["derived_factors"] = derived
        return RunData(
            key=demo,
            factors={
                "hardware": hardware,
                "environment": environment,
                "scenario": scenario,
            },
            streams=streams,
            skipped=skipped,
            extra=extra,
            name=f"{Path(p).stem} {demo}",
            source=p,
            size_bytes=_storage_bytes(group),
            wall_clock=_file_wall_clock(data_attrs),
        )

    # ----------------------------------------------------------------- generic

    def _generic_run(self, fh5: h5py.File, p: str, rate_hz: float | None) -> RunData:
        import h5py

        rate = float(rate_hz) if rate_hz is not None else DEFAULT_RATE_HZ
        groups: dict[str, list[tuple[str, h5py.Dataset]]] = {}

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                parent = name.rpartition("/")[0]
                groups.setdefault(parent, []).append((name, obj))

        fh5.visititems(visit)
        streams: dict[str, xr.Dataset] = {}
        skipped: list[dict[str, Any]] = []
        scalars: dict[str, Any] = {}
        synthetic: list[str] = []
        time_sources: dict[str, str] = {}
        for parent, members in sorted(groups.items()):
            time_ds = _find_time(members)
            time_ns: np.ndarray | None = None
            order: np.ndarray | None = None
            if time_ds is not None:
                raw = time_ds[()]
                if raw.dtype.kind == "f" and not np.all(np.isfinite(raw)):
                    skipped.append(
                        {
                            "topic": time_ds.name,
                            "reason": "time dataset has NaN or infinite values; "
                            "its group gets synthetic time",
                            "count": int(raw.shape[0]),
                        }
                    )
                    time_ds = None
                else:
                    t = to_ns(raw, "auto", path=p, column=time_ds.name)
                    order = np.argsort(t, kind="stable")
                    time_ns = t[order]
                    time_sources[parent or "/"] = time_ds.name
            for name, dset in sorted(members, key=lambda m: m[0]):
                if time_ds is not None and dset.name == time_ds.name:
                    continue
                if dset.ndim == 0:
                    scalars[name] = _attr_value(dset[()])
                    continue
                if dset.dtype.names:
                    ds, problem = _compound_stream(name, dset, rate, p)
                    if ds is None:
                        skipped.append(
                            {
                                "topic": name,
                                "reason": problem,
                                "count": int(dset.shape[0]),
                            }
                        )
                        continue
                    for field_name in dset.dtype.names:
                        if (
                            field_name not in ds.data_vars
                            and field_name.lower() not in TIME_NAMES
                        ):
                            skipped.append(
                                {
                                    "topic": f"{name}.{field_name}",
                                    "reason": f"non-numeric field ({dset.dtype[field_name]})",
                                    "count": int(dset.shape[0]),
                                }
                            )
                    if ds.attrs.get("time") == "synthetic":
                        synthetic.append(name)
                    streams[stream_name(name)] = ds
                    continue
                if (
                    time_ns is not None
                    and order is not None
                    and dset.shape[0] == time_ns.shape[0]
                ):
                    ds, problem = _dataset_stream(
                        name, dset, time_ns, name, order=order
                    )
                    if ds is not None:
                        ds.attrs["time_source"] = (
                            time_ds.name if time_ds is not None else ""
                        )
                else:
                    ds, problem = _dataset_stream(
                        name, dset, _synthetic_time(dset.shape[0], rate), name
                    )
                    if ds is not None:
                        ds.attrs["time"] = "synthetic"
                        synthetic.append(name)
                if ds is None:
                    skipped.append(
                        {"topic": name, "reason": problem, "count": int(dset.shape[0])}
                    )
                    continue
                streams[stream_name(name)] = ds

        root_attrs = _attrs(fh5)
        factors: dict[str, dict[str, Scalar]] = {}
        mapping = {
            "robot": ("hardware", "robot"),
            "robot_type": ("hardware", "robot"),
            "task": ("scenario", "task"),
            "env": ("environment", "name"),
            "env_name": ("environment", "name"),
        }
        for key, (group, fkey) in mapping.items():
            value = root_attrs.get(key)
            if isinstance(value, str) and value:
                factors.setdefault(group, {})[fkey] = parse_scalar(value)
            elif isinstance(value, int | float | bool):
                factors.setdefault(group, {})[fkey] = value
        extra: dict[str, Any] = {"layout": "generic", "attrs": root_attrs}
        if synthetic:
            extra["synthetic_time"] = {"rate_hz": rate, "streams": sorted(synthetic)}
        extra["clock"] = "synthetic" if synthetic and not time_sources else "file"
        if time_sources:
            extra["time_datasets"] = time_sources
        if scalars:
            extra["scalars"] = scalars
        return RunData(
            key="",
            factors=factors,
            streams=streams,
            skipped=skipped,
            extra=extra,
            name=Path(p).stem,
        )


def _storage_bytes(group: h5py.Group) -> int:
    """Bytes stored for every dataset under *group* (a demo's share of its file)."""
    import h5py

    total = 0

    def visit(_name: str, obj: Any) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(obj.id.get_storage_size())

    group.visititems(visit)
    return total


def _file_wall_clock(attrs: dict[str, Any]) -> tuple[int, str] | None:
    """Offset to UTC from robosuite's ``date`` (month-day-year) and ``time``
    (hour:minute:second) attributes, when the file has them: the moment the file was
    written, in the recording machine's local time (its zone is not recorded)."""
    import datetime as dt

    date, time = attrs.get("date"), attrs.get("time")
    if not isinstance(date, str) or not isinstance(time, str):
        return None
    try:
        month, day, year = (int(x) for x in date.split("-"))
        hour, minute, second = (int(x) for x in time.split(":"))
        when = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError:
        return None
    return int(when.timestamp()) * 10**9, "HDF5 date/time attributes (when the file was written; local time, zone unknown)"


def _masks(fh5: h5py.File) -> dict[str, set[str]]:
    import h5py

    grp = fh5.get(MASK_GROUP)
    out: dict[str, set[str]] = {}
    if not isinstance(grp, h5py.Group):
        return out
    for key, dset in grp.items():
        if isinstance(dset, h5py.Dataset):
            out[key] = {str(_attr_value(v)) for v in np.atleast_1d(dset[()])}
    return out


def _find_time(members: list[tuple[str, h5py.Dataset]]) -> h5py.Dataset | None:
    by_name = {name.rpartition("/")[2].lower(): d for name, d in members}
    for cand in TIME_NAMES:
        d = by_name.get(cand)
        if d is not None and d.ndim == 1 and d.dtype.kind in "iufM" and d.shape[0] > 0:
            return d
    return None


def _dataset_stream(
    name: str,
    dset: h5py.Dataset,
    time_ns: np.ndarray,
    source: str,
    *,
    order: np.ndarray | None = None,
) -> tuple[xr.Dataset | None, str]:
    import xarray as xr

    if dset.dtype.kind not in "iufb":
        return None, f"non-numeric dataset (dtype {dset.dtype})"
    if any(s == 0 for s in dset.shape[1:]):
        return None, f"zero-width dataset {tuple(dset.shape)}: no values"
    values = dset[()]
    if order is not None:
        values = values[order]
    var = name.rpartition("/")[2] or "value"
    dims, coords = _dims_for(name, values.shape, values.dtype)
    ds = xr.Dataset(
        {var: (dims, values)},
        coords={"time": ("time", time_ns), **{d: (d, c) for d, c in coords.items()}},
        attrs={"source": source},
    )
    units = dset.attrs.get("units") or dset.attrs.get("unit")
    if units is not None:
        ds[var].attrs["units"] = str(_attr_value(units))
    return ds, ""


def _compound_stream(
    name: str, dset: h5py.Dataset, rate: float, p: str
) -> tuple[xr.Dataset | None, str]:
    import xarray as xr

    if dset.ndim != 1:
        return None, f"compound dataset with {dset.ndim} dimensions"
    values = dset[()]
    fields = list(values.dtype.names or ())
    tfield = next(
        (f for f in fields if f.lower() in TIME_NAMES and values[f].ndim == 1), None
    )
    if tfield is not None and values[tfield].dtype.kind in "iufM":
        t = to_ns(values[tfield], "auto", path=p, column=f"{name}.{tfield}")
        order = np.argsort(t, kind="stable")
        time_ns, synthetic = t[order], False
    else:
        order = np.arange(values.shape[0])
        time_ns, synthetic = _synthetic_time(values.shape[0], rate), True
    data_vars = {}
    for f in fields:
        if f == tfield:
            continue
        col = values[f]
        if col.dtype.kind not in "iufb":
            continue
        dims = ["time"] + [f"dim_{i}" for i in range(1, col.ndim)]
        data_vars[f] = (dims, col[order])
    if not data_vars:
        return None, "compound dataset without numeric fields"
    ds = xr.Dataset(
        data_vars, coords={"time": ("time", time_ns)}, attrs={"source": name}
    )
    if synthetic:
        ds.attrs["time"] = "synthetic"
    return ds, ""
