"""A routing decision resolved to platforms and channels (pure)."""

from __future__ import annotations

from bridge.core.routing import RouteResult, Target
from bridge.rules.model import Destination, Ruleset


def channels(destination: Destination) -> list[tuple[str, str]]:
    """(platform, channel) of each place ``destination`` names, as delivery addresses them."""
    out: list[tuple[str, str]] = []
    if destination.slack is not None:
        out.append(("slack", destination.slack.channel))
    if destination.teams is not None:
        teams = destination.teams
        # A destination may name its own Bot Connector service URL (government clouds).
        where = f"{teams.service_url} {teams.conversation}" if teams.service_url else None
        out.append(("teams", where or teams.conversation))
    return out


def targets(ruleset: Ruleset, result: RouteResult) -> list[Target]:
    """Each delivery of ``result`` on each platform its destination names."""
    out: list[Target] = []
    for delivery in result.deliveries:
        destination = ruleset.destinations.get(delivery.destination)
        if destination is None:  # the rules loader guarantees this cannot happen
            continue
        out.extend(Target(delivery, platform, where) for platform, where in channels(destination))
    return out
