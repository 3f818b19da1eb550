"""Rules: YAML ↔ Python round trip, and bad rules refused with the rule, key and choices."""

from __future__ import annotations

import pytest

from workbench.events import Change, Match, RuleSet, Sequence, Signal, Threshold, load_rules
from workbench.model import ConfigError

YAML = """
factors: {hardware.robot: so101}
events:
  - name: grasp
    signal: {stream: observation.state, variable: state, joint: gripper.pos}
    below: 20
    release: 25
    min_duration: 0.2
    refractory: 1
  - name: slip
    first: grasp
    then: force_drop
    within: 2
  - name: force_drop
    signal: {derivative: {norm: {stream: ft_sensor, variable: force}}}
    below: -50
  - name: armed
    signal: {stream: HEARTBEAT, variable: base_mode, bit: 7}
    on_change: true
    values: {0: disarmed, 1: armed}
  - name: ekf
    match: "EKF(?P<lane>\\\\d) (?P<what>\\\\w+)"
    level: warn
  - name: tracking
    signal: {diff: [{stream: joint_states, variable: position, joint: j1}, {stream: joint_commands, variable: position, joint: j1}]}
    above: 0.1
  - {name: missed, first: grasp, without: lift, within: 5}
outcome:
  - failure: {event: slip}
  - success: {final: {signal: {stream: observation.state, variable: state, joint: gripper.pos}, above: 30}}
defaults: {disable: [error]}
"""


def test_yaml_and_python_objects_round_trip(tmp_path):
    path = tmp_path / "workbench.yaml"
    path.write_text(YAML)
    rules = load_rules(path)
    names = [r.name for r in rules.events]
    assert names.index("force_drop") < names.index("slip")  # a sequence comes after what it reads
    grasp = rules.rule("grasp")
    assert isinstance(grasp, Threshold) and grasp.direction == "below" and grasp.level == 20 and grasp.release_level == 25
    assert grasp.signal == Signal(stream="observation.state", variable="state", select=(("joint", "gripper.pos"),))
    assert isinstance(rules.rule("armed"), Change) and rules.rule("armed").signal.bit == 7  # type: ignore[union-attr]
    assert rules.rule("armed").value_name(1.0) == "armed"  # type: ignore[union-attr]
    ekf = rules.rule("ekf")
    assert isinstance(ekf, Match) and ekf.level == "WARN" and ekf.regex.search("EKF2 reset").groupdict() == {"lane": "2", "what": "reset"}
    assert isinstance(rules.rule("missed"), Sequence) and rules.rule("missed").without == "lift"  # type: ignore[union-attr]
    assert [c.result for c in rules.outcome.clauses] == ["failure", "success"]
    assert rules.defaults == ("error",)
    again = RuleSet.from_yaml(rules.to_yaml())
    assert again == rules and again.digest == rules.digest
    built = RuleSet(events=(Threshold(name="grasp", signal=Signal(stream="observation.state", variable="state",
                                                                   select=(("joint", "gripper.pos"),)),
                                      direction="below", level=20, release=25, min_duration=0.2, refractory=1),))
    assert RuleSet.from_dict(built.to_dict()) == built
    assert built.digest != rules.digest


@pytest.mark.parametrize(("text", "message"), [
    ("events: [{name: a, signal: {stream: s}, above: 1, colour: red}]", r"rule 'a': unknown key\(s\) \['colour'\]; valid keys: name, kind, when, signal, above"),
    ("events: [{name: a, match: '(unclosed'}]", r"rule 'a': bad regular expression '\(unclosed'"),
    ("events: [{name: a, signal: {stream: s}, above: high}]", r"rule 'a': 'above' must be a number, got 'high'"),
    ("events: [{name: a, signal: {stream: s}, above: 1, release: 2}]", r"rule 'a': release 2.0 must be ≤ the level 1.0"),
    ("events: [{name: a, signal: {stream: s}, above: 1, min_duration: -1}]", r"'min_duration' must be ≥ 0"),
    ("events: [{name: a, first: b, then: c, within: 1}, {name: b, first: a, then: x, within: 1}, {name: c, first: b, then: a, within: 1}]",
     r"the sequence rules form a cycle: a -> b -> a"),
    ("events: [{name: a, first: b, within: 1}]", r"rule 'a': a sequence takes 'first' and exactly one of 'then' or 'without'"),
    ("events: [{name: a, signal: {stream: s}}]", r"rule 'a': cannot tell the rule's type"),
    ("events: [{signal: {stream: s}, above: 1}]", r"events\[0\]: every rule needs a 'name'"),
    ("events: [{name: a, signal: {stream: s}, above: 1}, {name: a, signal: {stream: s}, below: 1}]", r"used twice"),
    ("events: [{name: a, match: x, level: LOUD}]", r"level 'LOUD' is not valid; choose one of DEBUG, INFO, WARN, ERROR, FATAL"),
    ("outcome: {success: {event: a}, partial: {event: b}}", r"outcome: unknown key 'partial'; valid keys: success, failure"),
    ("outcome: {success: {final: {signal: {stream: s}, near: 1}}}", r"outcome.success.final: unknown key\(s\) \['near'\]"),
    ("events: {name: a}", r"events: expected a list of rules"),
    ("evnts: []", r"unknown key\(s\) \['evnts'\]; valid keys: events, outcome, defaults"),
    ("events: [{name: a, signal: {stream: s, bit: 99}, on_change: true}]", r"'bit' \(0…62\)"),
    ("events: [{name: a, signal: {diff: [{stream: s}]}, above: 1}]", r"diff takes a list of two signals"),
])
def test_bad_rules_are_refused_naming_rule_key_and_choices(text, message):
    with pytest.raises(ConfigError, match=message):
        RuleSet.from_yaml(text)


def test_a_bad_file_is_named(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("events: [{name: a, match: '['}]")
    with pytest.raises(ConfigError, match=r"rules.yaml'.*rule 'a': bad regular expression"):
        load_rules(path)
    path.write_text("events: [unclosed")
    with pytest.raises(ConfigError, match=r"cannot read rules from .*rules.yaml"):
        load_rules(path)


def test_yaml_is_data_only():
    with pytest.raises(ConfigError, match="not valid YAML"):
        RuleSet.from_yaml("!!python/object/apply:os.system ['true']")
