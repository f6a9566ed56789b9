"""Pure decisions of the delivery loop: which due outbox items may be sent now (and with what
priority), which API action an item needs and who a message mentions. No I/O;
:mod:`bridge.deliver.delivery` acts on them."""

from __future__ import annotations

from collections.abc import Iterable

from bridge.core import plan
from bridge.core.calls import Call
from bridge.core.digest import DigestContent
from bridge.core.events import Participant
from bridge.core.slots import REPLY_PREFIXES
from bridge.deliver.pacing import Action
from bridge.store import Outgoing


def action_of(item: Outgoing) -> Action:
    if item.content is None:
        return "delete"
    if item.ref is not None:
        return "update"
    return "find" if item.attempted else "post"


def candidates(items: Iterable[Outgoing]) -> list[tuple[int, Outgoing]]:
    """What may be sent now, with its priority (lower first; ``Outgoing.priority``).

    A reply waits for its thread's parent (the live message, or a case alert for the case's
    steps) and for the replies before it. A missed alert whose live root
    in the same destination is still waiting to be posted lets that root go first (the store
    ranks such a root with the alert), so the alert can link to it. A root that is backing off
    after errors is not waited for: the alert goes out without the link, and the store makes
    it due again, for an edit that adds the link, once the root is posted.
    """
    items = list(items)
    unposted_roots = {
        (i.key.story_id, i.key.destination, i.key.platform)
        for i in items
        if i.key.slot == "root" and i.ref is None and i.content is not None
    }
    first_reply: dict[tuple[str, str, str, str], Outgoing] = {}
    out: list[tuple[int, Outgoing]] = []
    for item in items:
        thread = (item.key.story_id, item.key.destination, item.key.platform)
        if item.kind == "missed" and item.content is not None and thread in unposted_roots:
            continue
        if not item.key.slot.startswith(REPLY_PREFIXES) or item.content is None:
            out.append((item.priority, item))
            continue
        if item.root_ref is None:
            continue
        # the live thread's replies and a case alert's are two threads, each in its order
        replies = (*thread, item.key.slot.partition(":")[0])
        best = first_reply.get(replies)
        if best is None or item.order < best.order:
            first_reply[replies] = item
    out += [(item.priority, item) for item in first_reply.values()]
    return out


def people_of(content: plan.Content) -> list[Participant]:
    if isinstance(content, plan.CaseStepContent | DigestContent):
        return []
    if isinstance(content, plan.ReplyContent):
        step = content.step
        return [*step.people, *([step.by] if step.by else [])]
    call: Call = content.call
    found = [call.caller, *call.rung]
    found += [p for p in (call.answered_by, call.connected) if p is not None]
    for transfer in call.transfers:
        found += [*transfer.to, *([transfer.by] if transfer.by else [])]
    return found
