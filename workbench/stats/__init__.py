"""Statistics behind comparisons and the gate: exact tests for rates, rank and bootstrap
methods for continuous metrics, time-to-event estimates, multiplicity that respects
discreteness, planning, sequential monitoring and attribution.

Each module is independent of the store: functions take counts or arrays and return
numbers, so they can be checked against reference implementations.
"""
