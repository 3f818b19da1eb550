"""Events and outcomes on users' own logs: rules, format defaults, labels.

``from workbench.events import RuleSet, Threshold, Signal, evaluate, apply_rules``;
see :mod:`workbench.events.rules` for the YAML form.
"""

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
    "evaluate",
    "load_rules",
    "signal_pieces",
]
