"""Events and outcomes on users' own logs: rules, format defaults, labels.

* :mod:`workbench.events.rules` — the rule objects and their YAML form
  (``events:`` / ``outcome:`` / ``defaults:`` sections of ``workbench.yaml``);
* :mod:`workbench.events.engine` — :func:`evaluate` a rule set on one run, reading
  its streams piece by piece (bounded memory);
* :mod:`workbench.events.defaults` — the rules each format gets without configuration;
* :mod:`workbench.events.apply` — :func:`apply_rules` to stored runs (after ingest,
  without re-ingesting; Dask like grading) and :func:`label` by people.

Where a run's outcome comes from: a person's label beats a user's rule, which beats
the log's own events and the format defaults; with none, the outcome is unknown.

Examples
--------
>>> import workbench as wb
>>> rules = wb.events.RuleSet.from_yaml("events: [{name: contact, signal: {stream: ft, variable: force, axis: z}, above: 5, release: 2}]")
>>> rules.events[0].signal.describe()
'ft/force[axis=z]'
"""

from workbench.events.apply import ApplyReport as ApplyReport
from workbench.events.apply import apply_rules as apply_rules
from workbench.events.apply import configured_rules as configured_rules
from workbench.events.apply import label as label
from workbench.events.apply import label_from_file as label_from_file
from workbench.events.apply import mark_span as mark_span
from workbench.events.defaults import defaults_for as defaults_for
from workbench.events.engine import Evaluation as Evaluation
from workbench.events.engine import RuleProblem as RuleProblem
from workbench.events.engine import evaluate as evaluate
from workbench.events.engine import signal_pieces as signal_pieces
from workbench.events.rules import LEVELS as LEVELS
from workbench.events.rules import Change as Change
from workbench.events.rules import Clause as Clause
from workbench.events.rules import Match as Match
from workbench.events.rules import Outcome as Outcome
from workbench.events.rules import RuleSet as RuleSet
from workbench.events.rules import Sequence as Sequence
from workbench.events.rules import Signal as Signal
from workbench.events.rules import Threshold as Threshold
from workbench.events.rules import load_rules as load_rules

__all__ = [
    "LEVELS",
    "ApplyReport",
    "Change",
    "Clause",
    "Evaluation",
    "Match",
    "Outcome",
    "RuleProblem",
    "RuleSet",
    "Sequence",
    "Signal",
    "Threshold",
    "apply_rules",
    "configured_rules",
    "defaults_for",
    "evaluate",
    "label",
    "label_from_file",
    "load_rules",
    "mark_span",
    "signal_pieces",
]
