"""Delivery: the dispatcher (refold, route, plan into the outbox) and the delivery loop
(reconcile the outbox with Slack and Teams: pacing, priorities, the one retry layer)."""
