"""Playbooks (``playbooks/ID.yaml``): the steps of a kind of incident, who owns each, what
must be recorded, and the clocks that remind and page.

``load_playbooks`` validates every file of a folder against the organisation config and
raises one ConfigError listing every problem of every file, each with its line and field.
Cross-references (step ids, ``after``, ``from``, roles, cycles) are checked on the raw YAML
too, so they are reported together with type errors, at the exact place they concern.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Field as PydanticField

from .config import (
    DEFERRED,
    LEADS,
    OWNER,
    OrgConfig,
    RoleName,
    Severity,
    StrictModel,
    Text,
    check_role_name,
    deferred,
)
from .durations import Duration
from .field_types import FIELD_TYPES
from .yamlsrc import (
    ConfigError,
    Loc,
    Problem,
    Source,
    display_path,
    format_loc,
    load_yaml,
    sort_problems,
    validation_problems,
)

DECLARED = "declared"  # the default start of a timer's clock: the declaration
SUFFIXES = (".yaml", ".yml")
PLAYBOOK_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
FIELD_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# What a step with a viewing question also takes (in its form, and as `done STEP viewed=25m …`).
VIEWING_KEYS = ("viewed", "viewed_items", "viewed_kind")


def _playbook_id(value: str) -> str:
    if not PLAYBOOK_ID.match(value):
        raise ValueError(f"{value!r} is not a playbook id: use lowercase letters, digits and hyphens")
    return value


def _step_id(value: str) -> str:
    if not STEP_ID.match(value):
        raise ValueError(f"{value!r} is not a step id: use lowercase letters, digits, - and _")
    if value == DECLARED:
        raise ValueError(f"{DECLARED!r} cannot be a step id: timers use it for the declaration")
    return value


def _field_id(value: str) -> str:
    if not FIELD_ID.match(value):
        raise ValueError(f"{value!r} is not a field id: use lowercase letters, digits, - and _")
    return value


PlaybookId = Annotated[str, AfterValidator(_playbook_id)]
StepId = Annotated[str, AfterValidator(_step_id)]
FieldId = Annotated[str, AfterValidator(_field_id)]


class Field(StrictModel):
    """A value recorded when a step is checked off (a report id, a classification, …)."""

    id: FieldId
    label: Text
    type: Literal[tuple(FIELD_TYPES)]  # type: ignore[valid-type]  (bot/field_types.py)
    options: list[str] = PydanticField(default_factory=list, validate_default=True)
    """The choices of a select field (required for select, forbidden otherwise)."""
    pattern: str | None = None
    """A regular expression a text value must match (``re.search``, so anchor it: ``^…$``;
    text fields only)."""
    required: bool = True
    hint: str = ""
    private: bool = False
    """Kept on the timeline, never shown in Slack (a classification describes the material)."""
    pattern_hint: str | None = None
    """Shown instead of the regular expression when a value does not match (text fields)."""
    viewing: bool = False
    """The field asks whether a person viewed the content (US v. Wilson; a select field, whose
    answer ``none`` or ``no`` means nobody did): the step's form and ``done`` then also let the
    person log their own viewing (``viewed``, ``viewed_items``, ``viewed_kind``) in the private
    exposure ledger."""

    model_config = StrictModel.model_config | {"coerce_numbers_to_str": True}

    @field_validator("options")
    @classmethod
    def _options(cls, value: list[str], info: ValidationInfo) -> list[str]:
        kind = info.data.get("type")
        if kind == "select" and not value:
            raise ValueError("a select field needs a non-empty list of options")
        if kind is not None and kind != "select" and value:
            raise ValueError(f"only select fields have options (this field is {kind})")
        seen = set()
        for option in value:
            if not option.strip():
                raise ValueError("options must not be blank")
            if option in seen:
                raise ValueError(f"option {option!r} is listed twice")
            seen.add(option)
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        kind = info.data.get("type")
        if kind is not None and kind != "text":
            raise ValueError(f"only text fields have a pattern (this field is {kind})")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @field_validator("pattern_hint")
    @classmethod
    def _pattern_hint(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("pattern") is None:
            raise ValueError("pattern_hint explains a pattern: give the field a pattern too")
        return value

    @field_validator("viewing")
    @classmethod
    def _viewing(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("type") not in (None, "select"):
            raise ValueError("viewing: marks a select field (the answers all / some / none)")
        return value

    @property
    def element(self) -> str:
        """The Block Kit element of this field in a step's form."""
        return FIELD_TYPES[self.type].element

    def accepts(self, value: str) -> bool:
        """Whether ``value`` is acceptable (empty is acceptable for an optional field)."""
        if not value:
            return not self.required
        try:
            FIELD_TYPES[self.type].clean(self, value)
        except ValueError:
            return False
        return True


StepField = Field  # the same class, for modules that also import pydantic's Field


class Timer(StrictModel):
    """A clock on a step: ``after`` a duration ``from`` the declaration or another step's
    completion, remind a role (or the step's ``owner``) or page a role. Cancelled when the
    step is done or skipped."""

    after: Duration
    from_: str = PydanticField(default=DECLARED, alias="from")
    remind: str | None = None
    page: RoleName | None = None
    basis: str = ""
    """Optional: why the clock exists, for the review's legal-clock table. Starts with ``law``
    for a legal period (``law: 18 U.S.C. 2258A(h), 1 year from the report``), else says it is
    an internal target."""
    outlives_close: bool = False
    """Keep the clock running when the incident is closed: a duty that lasts beyond the work
    (the preservation review a year after the report), not a nudge to finish a step."""

    @model_validator(mode="after")
    def _one_action(self) -> Timer:
        if (self.remind is None) == (self.page is None):
            raise ValueError("a timer needs exactly one of remind: or page:")
        return self

    @field_validator("remind")
    @classmethod
    def _remind(cls, value: str | None) -> str | None:
        if value is not None and value != OWNER:
            check_role_name(value)
        return value

    @property
    def kind(self) -> Literal["remind", "page"]:
        return "remind" if self.remind is not None else "page"

    @property
    def target(self) -> str:
        """The role to remind or page, or ``owner``."""
        return self.remind if self.remind is not None else self.page  # type: ignore[return-value]

    def role(self, step: Step) -> str:
        """The role to remind or page, with ``owner`` resolved to the step's owner."""
        return step.owner if self.target == OWNER else self.target


class Step(StrictModel):
    id: StepId
    title: Text
    owner: RoleName
    """The one role that owns the step."""
    after: list[str] = []
    """Step ids that must be done (or skipped) before this step becomes active."""
    fields: list[Field] = []
    timers: list[Timer] = []
    help: str = ""
    who: list[str] | None = None
    """Narrows who may do, skip or undo this step (the ``step`` permission): ``owner`` and role
    ids, e.g. ``[child_safety_specialist]``."""

    @field_validator("who")
    @classmethod
    def _who(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("who: needs at least one role (or leave it out)")
        for word in value:
            if word not in (OWNER, LEADS):
                check_role_name(word)
        return value

    @field_validator("fields")
    @classmethod
    def _viewing_fields(cls, value: list[Field]) -> list[Field]:
        if any(f.viewing for f in value):
            if sum(f.viewing for f in value) > 1:
                raise ValueError("only one field of a step can be the viewing question (viewing: true)")
            taken = [f.id for f in value if f.id in VIEWING_KEYS]
            if taken:
                raise ValueError(f"field id {taken[0]!r} is taken by the viewing log on a step with viewing: true")
        return value

    @property
    def viewing_field(self) -> Field | None:
        """The field asking whether a person viewed the content, if the step has one."""
        return next((f for f in self.fields if f.viewing), None)

    @property
    def has_legal_clock(self) -> bool:
        """A clock with a ``law:`` basis that ends with the work (a lasting one, such as the
        preservation review, is meant to run past ``close``)."""
        return any(t.basis.lower().startswith("law") and not t.outlives_close for t in self.timers)

    def field(self, field_id: str) -> Field:
        for item in self.fields:
            if item.id == field_id:
                return item
        raise KeyError(f"step {self.id!r} has no field {field_id!r}")

    @property
    def required_fields(self) -> list[Field]:
        return [item for item in self.fields if item.required]


class Playbook(StrictModel):
    id: PlaybookId
    title: Text
    description: str = ""
    severity: Severity
    private: bool = True
    roles: list[RoleName] = []
    """Roles invited at declaration."""
    restricted: bool = False
    """The channel holds only the holders of the playbook's roles and the leads (2258B(c))."""
    steps: list[Step] = PydanticField(min_length=1)

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Playbook:
        if not deferred(info):
            roles = info.context.get("roles") if info.context else None
            found = reference_problems(self.model_dump(by_alias=True), roles)
            if found:
                raise ValueError("; ".join(f"{format_loc(loc)}: {msg}" for loc, msg in found))
        return self

    @property
    def step_ids(self) -> list[str]:
        return [step.id for step in self.steps]

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"playbook {self.id!r} has no step {step_id!r}")

    def has_step(self, step_id: str) -> bool:
        return any(step.id == step_id for step in self.steps)

    def steps_after(self, step_id: str) -> list[Step]:
        """The steps that wait directly on ``step_id``."""
        return [step for step in self.steps if step_id in step.after]

    def ready_steps(self, finished: Iterable[str]) -> list[Step]:
        """Steps not in ``finished`` (done or skipped) whose ``after`` steps all are."""
        finished = set(finished)
        return [
            step for step in self.steps
            if step.id not in finished and all(dep in finished for dep in step.after)
        ]

    def timers_from(self, start: str) -> list[tuple[Step, int, Timer]]:
        """Every (step, index in step.timers, timer) whose clock starts at ``start``
        (``declared`` or a step id)."""
        return [
            (step, index, timer)
            for step in self.steps
            for index, timer in enumerate(step.timers)
            if timer.from_ == start
        ]

    def roles_used(self) -> set[str]:
        """Every role the playbook names: invited, owning a step, reminded or paged."""
        used = set(self.roles)
        for step in self.steps:
            used.add(step.owner)
            used.update(timer.role(step) for timer in step.timers)
        return used


# --- cross-references ---------------------------------------------------------------------


def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item


def _strings(value: Any) -> Iterator[tuple[int, str]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield index, item


def reference_problems(data: Any, roles: Iterable[str] | None) -> list[tuple[Loc, str]]:
    """Cross-checks on raw playbook data (tolerant of wrong types: those are pydantic's job):
    duplicate ids, ``after``/``from`` naming missing steps, dependency cycles, and roles
    unknown to ``roles`` (not checked when ``roles`` is None or empty)."""
    if not isinstance(data, dict):
        return []
    known = sorted(roles) if roles else None
    found: list[tuple[Loc, str]] = []

    def check_role(loc: Loc, role: Any, *, owner_ok: bool = False) -> None:
        if not isinstance(role, str):
            return
        if role == OWNER:
            if not owner_ok:
                found.append((loc, f"{OWNER!r} is only a remind: target (the step's owner), not a role"))
            return
        if known is not None and role not in known:
            found.append((loc, f"unknown role {role!r} (known roles: {', '.join(known)})"))

    seen_roles: dict[str, int] = {}
    for index, role in _strings(data.get("roles")):
        check_role(("roles", index), role)
        if role in seen_roles:
            found.append((("roles", index), f"role {role!r} is listed twice"))
        seen_roles.setdefault(role, index)

    steps = list(_items(data.get("steps")))
    step_index: dict[str, int] = {}
    for index, step in steps:
        step_id = step.get("id")
        if isinstance(step_id, str):
            if step_id in step_index:
                found.append((
                    ("steps", index, "id"),
                    f"duplicate step id {step_id!r} (also steps[{step_index[step_id]}])",
                ))
            else:
                step_index[step_id] = index
    names = ", ".join(step_index) or "none"

    for index, step in steps:
        here: Loc = ("steps", index)
        check_role((*here, "owner"), step.get("owner"))
        listed: set[str] = set()
        for n, dep in _strings(step.get("after")):
            if dep == step.get("id"):
                found.append(((*here, "after", n), f"step {dep!r} cannot come after itself"))
            elif dep not in step_index:
                found.append(((*here, "after", n), f"unknown step {dep!r} (steps: {names})"))
            elif dep in listed:
                found.append(((*here, "after", n), f"step {dep!r} is listed twice"))
            listed.add(dep)
        field_index: dict[str, int] = {}
        for n, item in _items(step.get("fields")):
            field_id = item.get("id")
            if not isinstance(field_id, str):
                continue
            if field_id in field_index:
                found.append((
                    (*here, "fields", n, "id"),
                    f"duplicate field id {field_id!r} (also fields[{field_index[field_id]}])",
                ))
            else:
                field_index[field_id] = n
        for n, timer in _items(step.get("timers")):
            start = timer.get("from", timer.get("from_", DECLARED))
            key = "from" if "from" in timer or "from_" not in timer else "from_"
            if isinstance(start, str) and start != DECLARED:
                if start == step.get("id"):
                    found.append((
                        (*here, "timers", n, key),
                        "a timer cannot start when its own step is done (it is cancelled then)",
                    ))
                elif start not in step_index:
                    found.append((
                        (*here, "timers", n, key),
                        f"unknown step {start!r}: use {DECLARED!r} or a step id (steps: {names})",
                    ))
            check_role((*here, "timers", n, "remind"), timer.get("remind"), owner_ok=True)
            check_role((*here, "timers", n, "page"), timer.get("page"))
        for n, word in _strings(step.get("who")):
            if word != LEADS:
                check_role((*here, "who", n), word, owner_ok=True)

    found.extend(_cycles(steps, step_index))
    return found


def _cycles(
    steps: list[tuple[int, dict[str, Any]]], step_index: dict[str, int]
) -> list[tuple[Loc, str]]:
    """One problem per dependency cycle in ``after``, at the ``after`` of its first step."""
    graph: dict[str, list[str]] = {}
    steps_by_id = {step["id"]: step for index, step in steps
                   if isinstance(step.get("id"), str) and step_index.get(step["id"]) == index}
    for index, step in steps:
        step_id = step.get("id")
        if isinstance(step_id, str) and step_index.get(step_id) == index:
            graph[step_id] = [
                dep for _, dep in _strings(step.get("after")) if dep in step_index and dep != step_id
            ]
    found: list[tuple[Loc, str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):]
                turn = cycle.index(min(cycle, key=lambda s: step_index[s]))
                cycle = cycle[turn:] + cycle[:turn]
                first, second = cycle[0], cycle[1 % len(cycle)]
                step = steps_by_id[first]
                n = next(n for n, dep_id in _strings(step.get("after")) if dep_id == second)
                shown = " → ".join([*cycle, first])
                found.append((
                    ("steps", step_index[first], "after", n),
                    f"dependency cycle: {shown} (each step comes after the next one)",
                ))
            elif state.get(dep) is None:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return found


# --- loading -------------------------------------------------------------------------------


def validate_playbook(
    source: Source, roles: Iterable[str] | None = None, stem: str | None = None
) -> Playbook:
    """Validate one parsed playbook file against the known ``roles`` (None or empty: any role
    name) and, given ``stem``, its file name; raise ConfigError listing every problem."""
    data = source.data
    if data is None:
        raise ConfigError([source.problem((), "the file is empty")])
    if not isinstance(data, dict):
        raise ConfigError([source.problem((), "a playbook must be a mapping (id: …, steps: …)")])
    problems = [source.problem(loc, message) for loc, message in reference_problems(data, roles)]
    if stem is not None and isinstance(data.get("id"), str) and data["id"] != stem:
        problems.append(source.problem(
            ("id",), f"the id {data['id']!r} must equal the file name (rename the file or use {stem!r})"
        ))
    playbook = None
    try:
        playbook = Playbook.model_validate(data, context={DEFERRED: True})
    except ValidationError as exc:
        problems.extend(validation_problems(exc, source, Playbook))
    if problems or playbook is None:
        raise ConfigError(sort_problems(problems))
    return playbook


def playbook_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The playbook files of ``folder``: ``*.yaml`` and ``*.yml``, hidden files left out."""
    return sorted(
        path for path in Path(folder).iterdir()
        if path.suffix in SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def collect_playbooks(
    folder: str | os.PathLike[str], roles: Iterable[str] | None = None
) -> tuple[dict[str, Playbook], list[Problem]]:
    """The valid playbooks of ``folder`` by id, and the problems of the others (every file is
    read; ``roles`` are the known role names, None or empty to skip the role check)."""
    name = display_path(folder)
    if not Path(folder).is_dir():
        return {}, [Problem(name, None, "", "playbook folder not found")]
    files = playbook_files(folder)
    if not files:
        return {}, [Problem(name, None, "", "no playbook files (*.yaml) in the folder")]
    roles = sorted(roles) if roles else None
    playbooks: dict[str, Playbook] = {}
    problems: list[Problem] = []
    for path in files:
        try:
            playbook = validate_playbook(load_yaml(path), roles, stem=path.stem)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if playbook.id in playbooks:
            problems.append(Problem(
                display_path(path), None, "id", f"another file already defines playbook {playbook.id!r}"
            ))
            continue
        playbooks[playbook.id] = playbook
    return playbooks, problems


def load_playbooks(
    folder: str | os.PathLike[str], config: OrgConfig | None = None
) -> dict[str, Playbook]:
    """Every playbook of ``folder`` by id, checked against ``config``'s roles (when it defines
    any). Raises one ConfigError listing every problem of every file."""
    playbooks, problems = collect_playbooks(folder, config.role_names if config is not None else None)
    if problems:
        raise ConfigError(problems)
    return playbooks
