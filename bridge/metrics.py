"""Prometheus metrics, one registry per running app (tests can run several side by side).

No ``*_created`` series: they double the series count and say only when the process
started (``process_start_time_seconds`` is not exposed either, the registry is our own).
prometheus-client has no per-registry switch, so :func:`disable_created_metrics` is called
once for the process, which only ever runs callbridge's registries.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bridge.core.events import STATUSES

CONTENT_TYPE = CONTENT_TYPE_LATEST

disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "callbridge_events_received",
            "Provider notifications received, by status and result",
            ["status", "result"],
            registry=r,
        )
        self.events_refused = Counter(
            "callbridge_events_refused",
            "Well-formed notifications refused by a limit, by reason (call_events_cap: the "
            "call already holds the most events one call may have)",
            ["reason"],
            registry=r,
        )
        self.events_refused.labels("call_events_cap")
        self.ingest_latency = Histogram(
            "callbridge_ingest_latency_seconds",
            "Time from request received to acknowledgement (includes the durable commit)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.active_calls = Gauge(
            "callbridge_active_calls", "Calls seen and not yet ended", registry=r
        )
        self.store_errors = Counter(
            "callbridge_store_errors", "Store operations that failed", ["operation"], registry=r
        )
        self.dispatched = Counter(
            "callbridge_dispatch",
            "Call stories folded by the dispatcher, by result: changed (a new state or plan), "
            "unchanged, stale (a transfer merged the story while it was folded: nothing "
            "written, folded again at once), error",
            ["result"],
            registry=r,
        )
        self.dispatch_backlog = Gauge(
            "callbridge_dispatch_backlog",
            "Call stories waiting for the dispatcher (it falls behind on purpose under overload)",
            registry=r,
        )
        self.dispatch_cycle = Histogram(
            "callbridge_dispatch_cycle_seconds",
            "Duration of one dispatcher cycle (read, fold, plan and write its stories)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.stale_closed = Counter(
            "callbridge_calls_closed_stale",
            "Calls closed because no `ended` arrived in time",
            registry=r,
        )
        self.purged = Counter(
            "callbridge_calls_purged", "Ended calls deleted by retention", registry=r
        )
        # Labels only ever come from small fixed sets: a dialled number (or any other value a
        # caller or client chooses) would make one series per value. The numbers are logged.
        self.unmatched = Counter(
            "callbridge_unmatched_calls",
            "Calls that matched no route, by direction (inbound / outbound); the dialled "
            "number is in the dispatch.unmatched log line",
            ["direction"],
            registry=r,
        )
        for direction in ("inbound", "outbound"):
            self.unmatched.labels(direction)
        self.rules_reload_success = Gauge(
            "callbridge_rules_last_reload_success",
            "1 if the last rules (re)load succeeded, 0 if it was refused",
            registry=r,
        )
        self.rules_reload_time = Gauge(
            "callbridge_rules_last_reload_timestamp_seconds",
            "Unix time of the last rules (re)load attempt",
            registry=r,
        )
        self.dryrun = Counter(
            "callbridge_dryrun_messages",
            "Messages the dry-run sink logged instead of sending, by platform and action "
            "(post, reply, update, delete)",
            ["platform", "action"],
            registry=r,
        )
        self.chat_calls = Counter(
            "callbridge_chat_api_calls",
            "Chat platform API calls, by platform, method and result",
            ["platform", "method", "result"],
            registry=r,
        )
        self.chat_up = Gauge(
            "callbridge_chat_platform_up",
            "1 while the chat platform works for delivery (credentials verified, requests not "
            "failing), 0 while it fails",
            ["platform"],
            registry=r,
        )
        self.rate_limited = Counter(
            "callbridge_chat_rate_limited",
            "429 answers from the chat platform (target: 0; pacing should prevent them)",
            ["platform", "method"],
            registry=r,
        )
        self.retries = Counter(
            "callbridge_delivery_retries",
            "Deliveries retried after a retryable error, by platform and error code",
            ["platform", "code"],
            registry=r,
        )
        self.delivery_failed = Counter(
            "callbridge_delivery_failures",
            "Deliveries that failed permanently or on credentials, by platform and code",
            ["platform", "code"],
            registry=r,
        )
        self.delivered = Counter(
            "callbridge_delivered",
            "Messages posted, updated or deleted, by platform, kind and action",
            ["platform", "kind", "action"],
            registry=r,
        )
        self.recovered = Counter(
            "callbridge_delivery_recovered",
            "Posts found by metadata after an unknown outcome (a duplicate avoided)",
            ["platform"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "callbridge_delivery_queue_depth",
            "Messages waiting to be posted or updated, by platform and channel",
            ["platform", "channel"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "callbridge_delivery_latency_seconds",
            "From a message's desired state being stored to the platform call returning",
            ["platform", "kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=r,
        )
        self.cases_open = Gauge(
            "callbridge_callback_cases_open",
            "Callback cases not closed yet (a customer waiting to be called back)",
            registry=r,
        )
        self.cases_closed = Counter(
            "callbridge_callback_cases_closed",
            "Callback cases closed, by how: got_through, called_back, done, expired",
            ["how"],
            registry=r,
        )
        self.case_wait = Histogram(
            "callbridge_callback_case_wait_seconds",
            "From a case's first missed call to its closing (called back, got through or "
            "done by hand), by how",
            ["how"],
            buckets=(60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200),
            registry=r,
        )
        self.case_facts_capped = Counter(
            "callbridge_callback_case_facts_capped",
            "Refolds of a missed call whose caller number has more case facts than a refold "
            "reads (200, MAX_FACTS_PER_NUMBER): the oldest were left out, as if archived",
            registry=r,
        )
        self.digests = Counter(
            "callbridge_digest_messages",
            "Daily digest messages planned: one per channel of each destination in the rules' "
            "digest.to, once per digest time (delivery posts them like any message)",
            registry=r,
        )
        self.clicks = Counter(
            "callbridge_slack_clicks",
            "Requests to POST /slack/interactions, by the case button (claim, release, done; "
            "`unknown` when refused before it is read) and result: accepted, duplicate (the "
            "same press again), refused (400/401, reason in the log), unavailable (503)",
            ["action", "result"],
            registry=r,
        )
        self.teams_clicks = Counter(
            "callbridge_teams_clicks",
            "Requests to POST /teams/messages that are (or may be) case button clicks, by the "
            "button (claim, release, done; `unknown` when refused before it is read) and "
            "result: accepted, duplicate, refused (400/401, reason in the log), unavailable "
            "(503: no signing keys, or the store)",
            ["action", "result"],
            registry=r,
        )
        for how in ("got_through", "called_back", "done", "expired"):
            self.cases_closed.labels(how)
        for status in (*STATUSES, "invalid"):
            for result in ("accepted", "duplicate"):
                self.events.labels(status, result)

    def render(self) -> bytes:
        return generate_latest(self.registry)
