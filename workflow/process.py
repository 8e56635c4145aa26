"""The vocabulary every process module uses to declare itself.

A process module lists its states, one `Rule` per (action, source state, role) and its
deadlines; `Process` turns that into one shared `transitions.Machine` (class level, no model)
and answers the questions the engine, the queues and the UI ask of the table. Keeping the
table ours, rather than asking the machine, is what lets us compute "what may this user do
now" without binding models to the machine.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine

Validator = Callable[..., dict[str, str]]
# (session, case, raw values) → (clean values, field errors); may raise Conflict when the values
# name something not possible now (a tranche already paid, say).
ValuesCheck = Callable[..., tuple[dict[str, Any], dict[str, str]]]


@dataclass(frozen=True)
class Rule:
    action: str
    source: str
    dest: str
    role: str
    comment_required: bool = False
    # A recommendation: its author may not take the decision on the same case.
    recommends: bool = False
    # A decision: refused to anyone who recommended on this case.
    decides: bool = False
    # Checks on the case before the transition; returns field → message (empty when fine).
    validate: Validator | None = None
    # What the action carries besides a comment (a score, an amount, a tranche number); the
    # clean values go to the effects and into the audit entry.
    values: ValuesCheck | None = None
    # (session, case) → whether the action makes sense now, beyond the state: a rule that keeps
    # the case in its state (a tranche's payment) is offered only when there is one to pay.
    available: Callable[..., bool] | None = None


@dataclass(frozen=True)
class Deadline:
    """How long a case may stay in a state: staff SLAs in working days, applicants in days."""

    working_days: int | None = None
    calendar_days: int | None = None


@dataclass
class Process:
    kind: str
    states: tuple[str, ...]
    initial: str
    rules: tuple[Rule, ...]
    terminal: frozenset[str]
    deadlines: Mapping[str, Deadline] = field(default_factory=dict)
    # action → callbacks run after the state changed (transitions' `after`), given the EventData.
    effects: Mapping[str, tuple[Callable[..., Any], ...]] = field(default_factory=dict)
    # actions after which the organisation's members hear about their case
    notify_applicants: frozenset[str] = frozenset()
    # (session, case, raw data, complete=bool) → (clean data, field errors)
    clean_data: Callable[..., tuple[dict[str, Any], dict[str, str]]] | None = None
    title: Any = ""
    # (session, new case) → raises a WorkflowError if the case may not be opened; runs after
    # the draft is flushed (so it has an id) and inside the creating transaction.
    on_open: Callable[..., None] | None = None
    # Whether an organisation may have only one open application of this kind at a time; grant
    # requests to different programmes run side by side and their on_open decides.
    one_open_per_organization: bool = True
    machine: Machine = field(init=False)

    def __post_init__(self) -> None:
        seen: dict[tuple[str, str], str] = {}
        for rule in self.rules:
            assert rule.source in self.states and rule.dest in self.states, rule
            previous = seen.setdefault((rule.action, rule.source), rule.dest)
            # One destination per (action, source): roles differ, outcomes must not.
            assert previous == rule.dest, rule
        self.machine = Machine(
            model=None,
            states=list(self.states),
            transitions=[
                {
                    "trigger": action,
                    "source": source,
                    "dest": dest,
                    "after": list(self.effects.get(action, ())),
                }
                for (action, source), dest in seen.items()
            ],
            initial=None,
            auto_transitions=False,
            send_event=True,
            model_attribute="state",
        )
        # The table's answers the engine asks on every transition, worked out once.
        self._actions = frozenset(r.action for r in self.rules)
        self._rules_for: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self._roles_for: dict[str, frozenset[str]] = {}
        self._rules_from: dict[str, tuple[Rule, ...]] = {}
        for rule in self.rules:
            self._rules_from[rule.source] = (*self._rules_from.get(rule.source, ()), rule)
            self._rules_for[rule.action, rule.source] = (*self._rules_for.get((rule.action, rule.source), ()), rule)
            self._roles_for[rule.action] = self._roles_for.get(rule.action, frozenset()) | {rule.role}

    @property
    def actions(self) -> frozenset[str]:
        return self._actions

    def rules_for(self, action: str, state: str) -> list[Rule]:
        return list(self._rules_for.get((action, state), ()))

    def rules_from(self, state: str) -> tuple[Rule, ...]:
        """The rules whose source is `state`, in the table's order."""
        return self._rules_from.get(state, ())

    def roles_for_action(self, action: str) -> frozenset[str]:
        return self._roles_for.get(action, frozenset())

    def states_for_role(self, role: str) -> frozenset[str]:
        """States in which a holder of `role` has something to do: that role's queue."""
        return frozenset(r.source for r in self.rules if r.role == role)

    @property
    def recommend_actions(self) -> frozenset[str]:
        return frozenset(r.action for r in self.rules if r.recommends)

    def fire(self, case: Any, action: str, **context: Any) -> None:
        self.machine.events[action].trigger(case, **context)
