"""A routing decision resolved to platforms and channels (pure)."""

from __future__ import annotations

from bridge.core.routing import RouteResult, Target
from bridge.rules.model import Ruleset


def targets(ruleset: Ruleset, result: RouteResult) -> list[Target]:
    """Each delivery of ``result`` on each platform its destination names."""
    out: list[Target] = []
    for delivery in result.deliveries:
        destination = ruleset.destinations.get(delivery.destination)
        if destination is None:  # the rules loader guarantees this cannot happen
            continue
        if destination.slack is not None:
            out.append(Target(delivery, "slack", destination.slack.channel))
        if destination.teams is not None:
            teams = destination.teams
            # A destination may name its own Bot Connector service URL (government clouds).
            where = f"{teams.service_url} {teams.conversation}" if teams.service_url else None
            out.append(Target(delivery, "teams", where or teams.conversation))
    return out
