"""Format defaults: rules that ship with the workbench, on without configuration.

Each format's rules read only what that format's logs hold, and a default never
invents an outcome the log does not hold: a rule whose stream a run lacks does not
apply (it is listed, not guessed). Every default can be replaced (a user rule of the
same name), disabled by name (``defaults: {disable: [NAME]}``) or all at once
(``defaults: false``). Their events have origin ``default:<format>.<name>``.

=========================  ===================================================================
format (reader)            defaults
=========================  ===================================================================
every format               ``error``: log messages (ROS ``/rosout``, MAVLink STATUSTEXT, ULog
                           logged messages) at ERROR or FATAL
``lerobot``                ``done`` (``next.done`` turns true); ``reward`` (``next.reward`` > 0);
                           outcome: success when ``next.success`` is ever true, failure when
                           the dataset holds ``next.success`` and it never is
``hdf5`` (robomimic)       ``done`` (``dones`` = 1); outcome: success when ``rewards`` reaches 1
                           (robosuite's reward at task success, sparse or shaped with
                           ``reward_scale=1``), else failure when the demo holds ``rewards``
``ulog`` (PX4)             ``arming`` (``vehicle_status.arming_state`` changes; 1 disarmed,
                           2 armed), ``nav_state`` changes (flight mode), ``failsafe``
                           (``vehicle_status.failsafe``), ``landed`` / ``takeoff``
                           (``vehicle_land_detected.landed``)
``tlog`` (MAVLink)         ``arming`` (HEARTBEAT ``base_mode`` bit 7), ``mode``
                           (HEARTBEAT ``custom_mode`` changes)
``dataflash`` (ArduPilot)  MODE/ARM/EV/ERR are events of the log itself (read by the reader)
=========================  ===================================================================

Examples
--------
>>> sorted(r.name for r in defaults_for("ulog").events)
['arming', 'error', 'failsafe', 'landed', 'nav_state', 'takeoff']
>>> defaults_for("mcap").outcome.clauses
()
"""

from __future__ import annotations

import functools

from workbench.events.rules import RuleSet

__all__ = ["COMMON", "FORMAT_DEFAULTS", "defaults_for"]

COMMON = """
events:
  - {name: error, match: ".", level: ERROR}
"""

PX4_NAV_STATES = {
    0: "MANUAL", 1: "ALTCTL", 2: "POSCTL", 3: "AUTO_MISSION", 4: "AUTO_LOITER", 5: "AUTO_RTL",
    10: "ACRO", 12: "DESCEND", 13: "TERMINATION", 14: "OFFBOARD", 15: "STAB", 17: "AUTO_TAKEOFF",
    18: "AUTO_LAND", 19: "AUTO_FOLLOW_TARGET", 20: "AUTO_PRECLAND", 21: "ORBIT", 22: "AUTO_VTOL_TAKEOFF",
}

FORMAT_DEFAULTS: dict[str, str] = {
    "lerobot": """
events:
  - {name: done, signal: {stream: next.done}, equals: 1}
  - {name: reward, signal: {stream: next.reward}, above: 0}
outcome:
  - success: {any: {signal: {stream: next.success}, equals: 1}}
  - failure: {final: {signal: {stream: next.success}, equals: 0}}
""",
    "hdf5": """
events:
  - {name: done, signal: {stream: dones}, equals: 1}
outcome:
  - success: {any: {signal: {stream: rewards}, above: 0.999999}}
  - failure: {final: {signal: {stream: rewards}, below: 0.999999}}
""",
    "ulog": """
events:
  - name: arming
    signal: {stream: vehicle_status, variable: arming_state}
    on_change: true
    values: {1: disarmed, 2: armed}
  - name: nav_state
    signal: {stream: vehicle_status, variable: nav_state}
    on_change: true
    values: %s
  - {name: failsafe, signal: {stream: vehicle_status, variable: failsafe}, equals: 1}
  - {name: landed, signal: {stream: vehicle_land_detected, variable: landed}, on_change: true, to: 1}
  - {name: takeoff, signal: {stream: vehicle_land_detected, variable: landed}, on_change: true, from: 1, to: 0}
""" % {k: v for k, v in PX4_NAV_STATES.items()},
    "tlog": """
events:
  - name: arming
    signal: {stream: HEARTBEAT, variable: base_mode, bit: 7}
    on_change: true
    values: {0: disarmed, 1: armed}
  - {name: mode, signal: {stream: HEARTBEAT, variable: custom_mode}, on_change: true}
""",
}


@functools.lru_cache(maxsize=64)
def defaults_for(reader: str) -> RuleSet:
    """The default rules for logs read by *reader* (plus the rules common to all formats);
    parsed once per reader (a :class:`RuleSet` is immutable)."""
    common = RuleSet.from_yaml(COMMON, origin="defaults")
    text = FORMAT_DEFAULTS.get(reader)
    if text is None:
        return common
    return RuleSet.from_yaml(text, origin=f"defaults:{reader}").merged(common)
