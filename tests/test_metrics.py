"""GET /metrics after a dry-run call: no `_created` series, the dry-run counter counts, and the
metric names the docs give are the names exposed (and every exposed one is documented)."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bridge.service.chat import chat_platforms
from tests.support.harness import body, make_settings, running_bridge

REPO = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": "Bearer s3cret-webhook-token"}
DOCS = [REPO / "README.md", REPO / "systemd" / "INSTALL.md", *sorted((REPO / "docs").glob("*.md"))]


def documented(path: Path) -> set[str]:
    names = set(re.findall(r"\bcallbridge_[a-z_]+[a-z]", path.read_text(encoding="utf-8")))
    return {n for n in names if not n.startswith("callbridge_bench")}  # a database name


def readme_metrics_list() -> set[str]:
    """The names in the README's `GET /metrics` item."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    item = text[text.index("- `GET /metrics`") :]
    item = item[: item.index("\n- ")]
    return set(re.findall(r"\bcallbridge_[a-z_]+[a-z]", item))


async def test_metrics_after_a_dry_run_call_match_the_docs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # no Slack or Teams credentials: both are dry-run
    async with running_bridge(settings, platforms=chat_platforms(settings)) as (bridge, client, _):
        response = await client.post("/notifications", data=body(), headers=AUTH)  # ringing
        assert response.status == 200
        await bridge.dispatcher.drained()
        assert bridge.delivery is not None
        await bridge.delivery.settled()
        text = await (await client.get("/metrics")).text()

    families = list(text_string_to_metric_families(text))
    samples = {s.name: s for f in families for s in f.samples}
    assert not [name for name in samples if name.endswith("_created")]

    # The live message's root and its first thread reply were logged instead of posted.
    dryrun = {
        (s.labels["platform"], s.labels["action"]): s.value
        for f in families
        if f.name == "callbridge_dryrun_messages"
        for s in f.samples
    }
    assert dryrun == {("slack", "post"): 1.0, ("slack", "reply"): 1.0}

    exposed = set()  # the names a query uses: counters with _total, histograms by family too
    for family in families:
        exposed.add(family.name + "_total" if family.type == "counter" else family.name)
        exposed.update(s.name for s in family.samples)
    ours = {f.name + "_total" if f.type == "counter" else f.name for f in families}
    assert ours == {n for n in ours if n.startswith("callbridge_")}

    for path in DOCS:
        wrong = documented(path) - exposed
        assert not wrong, f"{path.relative_to(REPO)} names metrics that are not exposed: {wrong}"
    undocumented = ours - readme_metrics_list()
    assert not undocumented, f"exposed but not in the README's metrics list: {undocumented}"
