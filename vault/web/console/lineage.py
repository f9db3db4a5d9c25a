"""A token's lineage as a graph, from the audit events that name it (drawn by ``templates/_lineage.html``).

Pure. Each store event names the store token used (``token_id``), the authority
token that obtained its org discharge and that token's ancestors (``lineage``,
oldest last) and the user the authority attested (``actor``). So one event
spells out one path::

    user --created--> permission token --stripped--> service token --discharged--> store token --narrowed--> scope

A permission token used directly (no strip) links straight to the store token.
A discharge a workload obtained with its JWT (docs/workload-identity.md) spells
``workload --bound--> workload binding --discharged--> store token``: its event's
actor is ``workload:<label>`` and its lineage the binding's id.
The last column holds the narrowed copies seen in events: the client narrows the
store token to one operation, vault and secret per call, and those copies share
the store token's id, so a copy is named by what it was narrowed to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Edge", "Graph", "Node", "lineage_graph"]

COLUMNS = ("user", "workload", "permission", "service", "binding", "store", "scope")
COLUMN_TITLES = (
    "User",
    "Workload",
    "Permission token",
    "Service token",
    "Workload binding",
    "Store token",
    "Narrowed copies (scope)",
)
WORKLOAD_ACTOR = "workload:"
NODE_WIDTH = 190
NODE_HEIGHT = 50
_COLUMN_STEP = 268
_ROW_STEP = 66
_TOP = 34
MAX_SCOPES = 12
"""Scopes drawn per store token; the rest are counted in one "more" node."""


@dataclass(slots=True)
class Node:
    key: str
    kind: str
    label: str
    detail: str = ""
    token_id: str | None = None
    revoked: str | None = None  # "revoked" or "revoked with its parent"
    focus: bool = False
    events: int = 0
    refused: int = 0
    x: int = 0
    y: int = 0

    @property
    def short(self) -> str:
        return self.token_id[:8] if self.token_id else self.label

    @property
    def width(self) -> int:
        return NODE_WIDTH

    @property
    def height(self) -> int:
        return NODE_HEIGHT


@dataclass(frozen=True, slots=True)
class Edge:
    source: Node
    target: Node
    label: str

    @property
    def path(self) -> str:
        x1, y1 = self.source.x + NODE_WIDTH, self.source.y + NODE_HEIGHT // 2
        x2, y2 = self.target.x, self.target.y + NODE_HEIGHT // 2
        mid = (x1 + x2) // 2
        return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"

    @property
    def label_x(self) -> int:
        return (self.source.x + NODE_WIDTH + self.target.x) // 2

    @property
    def label_y(self) -> int:
        return (self.source.y + self.target.y) // 2 + NODE_HEIGHT // 2 - 4


@dataclass(slots=True)
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0
    columns: tuple[tuple[str, int], ...] = ()

    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes if n.kind == kind]


class _Builder:
    def __init__(self, revoked: Set[str], emails: Mapping[str, str], focus: str | None) -> None:
        self.revoked = revoked
        self.emails = emails
        self.focus = focus
        self.nodes: dict[str, Node] = {}
        self.edges: dict[tuple[str, str], Edge] = {}
        self.scopes: dict[str, int] = {}

    def node(
        self, key: str, kind: str, label: str, token_id: str | None = None, ancestors: tuple[str, ...] = ()
    ) -> Node:
        found = self.nodes.get(key)
        if found is None:
            revoked = None
            if token_id in self.revoked:
                revoked = "revoked"
            elif any(a in self.revoked for a in ancestors):
                revoked = "revoked with its parent"
            found = Node(key, kind, label, token_id=token_id, revoked=revoked, focus=token_id == self.focus)
            self.nodes[key] = found
        return found

    def edge(self, source: Node, target: Node, label: str) -> None:
        self.edges.setdefault((source.key, target.key), Edge(source, target, label))

    def who(self, actor: str) -> str:
        email = self.emails.get(actor)
        return f"user {actor} ({email})" if email else f"user {actor}"

    def user(self, actor: str) -> Node:
        email = self.emails.get(actor)
        node = self.node(f"user:{actor}", "user", f"user {actor}")
        node.detail = email or "as the authority attests"
        return node

    def add_workload(self, event: Mapping[str, Any], label: str, refused: bool) -> list[Node]:
        detail = event.get("detail")
        who = detail.get("workload") if isinstance(detail, Mapping) else None
        workload = self.node(f"workload:{label}", "workload", label)
        if isinstance(who, Mapping):
            workload.detail = f"{who.get('subject')} from {who.get('issuer')}"
        workload.events += 1
        workload.refused += refused
        path = [workload]
        for binding_id in (str(t) for t in event.get("lineage") or ()):
            binding = self.node(f"token:{binding_id}", "binding", "workload binding", binding_id)
            binding.detail = "discharges for the workload's JWT"
            binding.events += 1
            binding.refused += refused
            self.edge(workload, binding, "bound")
            path.append(binding)
        return path

    def add(self, event: Mapping[str, Any]) -> None:
        actor = event.get("actor")
        if isinstance(actor, str) and actor.startswith(WORKLOAD_ACTOR):
            refused = event.get("outcome") != "ok"
            chain = self.add_workload(event, actor.removeprefix(WORKLOAD_ACTOR), refused)
            store_id = event.get("token_id")
            if store_id:
                store = self.node(f"token:{store_id}", "store", "store token", str(store_id))
                store.events += 1
                store.refused += refused
                self.edge(chain[-1], store, "discharged")
                self.scope(store, event, refused)
            return
        lineage = tuple(str(t) for t in event.get("lineage") or ())
        store_id = event.get("token_id")
        refused = event.get("outcome") != "ok"
        path: list[Node] = []
        user = self.user(str(actor)) if actor else None
        if user is not None:
            user.events += 1
            user.refused += refused
        if lineage:
            oldest = lineage[-1]
            permission = self.node(f"token:{oldest}", "permission", "permission token", oldest)
            permission.detail = f"created by {self.who(str(actor))}" if actor else "created by an unattested user"
            if user is not None:
                self.edge(user, permission, "created")
            path.append(permission)
            # Service tokens, oldest first (normally one: strip takes a permission token).
            for depth in range(len(lineage) - 2, -1, -1):
                token = lineage[depth]
                service = self.node(f"token:{token}", "service", "service token", token, lineage[depth + 1 :])
                # The email alone when known (the user's node shows both): "user 7 (email)" does not fit the box.
                by = self.emails.get(str(actor)) or self.who(str(actor))
                service.detail = f"stripped by {by}" if actor else "stripped"
                self.edge(path[-1], service, "stripped")
                path.append(service)
        if not path and user is not None:
            path.append(user)
        if store_id:
            store = self.node(f"token:{store_id}", "store", "store token", str(store_id))
            store.events += 1
            store.refused += refused
            if path:
                self.edge(path[-1], store, "discharged" if lineage else "used")
            self.scope(store, event, refused)
        for node in path:
            if node is user:
                continue
            node.events += 1
            node.refused += refused

    def scope(self, store: Node, event: Mapping[str, Any], refused: bool) -> None:
        where = "/".join(str(x) for x in (event.get("vault"), event.get("secret")) if x)
        label = f"{event.get('action')} {where}".strip()
        key = f"scope:{store.key}:{label}"
        if key not in self.nodes and self.scopes.get(store.key, 0) >= MAX_SCOPES:
            key, label = f"scope:{store.key}:more", "other scopes"
        if key not in self.nodes:
            self.scopes[store.key] = self.scopes.get(store.key, 0) + 1
        node = self.node(key, "scope", label)
        node.events += 1
        node.refused += refused
        node.detail = f"{node.events} event(s), {node.refused} refused"
        self.edge(store, node, "narrowed")


def lineage_graph(
    events: Iterable[Mapping[str, Any]],
    *,
    revoked: Set[str] = frozenset(),
    emails: Mapping[str, str] | None = None,
    focus: str | None = None,
) -> Graph:
    """The graph of every path the events spell out, laid out in :data:`COLUMNS` left to right."""
    builder = _Builder(revoked, emails or {}, focus)
    for event in events:
        builder.add(event)
    used = [kind for kind in COLUMNS if any(n.kind == kind for n in builder.nodes.values())]
    rows = {kind: 0 for kind in used}
    for node in builder.nodes.values():
        column = used.index(node.kind)
        node.x = 10 + column * _COLUMN_STEP
        node.y = _TOP + rows[node.kind] * _ROW_STEP
        rows[node.kind] += 1
    height = _TOP + max(rows.values(), default=0) * _ROW_STEP
    titles = tuple((COLUMN_TITLES[COLUMNS.index(kind)], 10 + i * _COLUMN_STEP) for i, kind in enumerate(used))
    return Graph(
        nodes=list(builder.nodes.values()),
        edges=list(builder.edges.values()),
        width=max(len(used), 1) * _COLUMN_STEP,
        height=height,
        columns=titles,
    )
