"""GET /preview and /preview/state: the local preview page of a dry-run bridge.

Served only when no chat platform has credentials (``bridge/service/app.py`` decides), on the
address ``callbridge serve`` listens on. The page is one self-contained HTML document (inline
style and script, nothing fetched from the internet) that polls ``/preview/state`` once a
second and swaps in the board when it changed. The board is drawn on the server by
:mod:`bridge.render.preview_html`, which escapes every text; a Content-Security-Policy allows
only the page's own script and requests to this server on top of that.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from bridge.notify.preview import PreviewBoard
from bridge.render.preview_html import board_html

PATH: Final = "/preview"
STATE_PATH: Final = "/preview/state"

Names = Callable[[], Iterable[tuple[str, str, str]]]  # (platform, channel, destination)


@dataclass(frozen=True, slots=True)
class Preview:
    board: PreviewBoard
    names: Names


PREVIEW = web.AppKey("preview", Preview)

_SCRIPT: Final = """
let version = -1;
async function refresh() {
  try {
    const answer = await fetch("/preview/state?since=" + version, {cache: "no-store"});
    if (answer.ok) {
      const state = await answer.json();
      if (state.version !== version) {
        document.getElementById("board").innerHTML = state.html;
        version = state.version;
        document.body.dataset.version = String(version);
      }
      document.getElementById("status").textContent = "live · updated " +
        new Date().toLocaleTimeString();
    }
  } catch (err) {
    document.getElementById("status").textContent = "the bridge does not answer: " + err;
  }
  setTimeout(refresh, 1000);
}
refresh();
"""

_STYLE: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f6;color:#1d1c1d}
header{background:#3f0e40;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:baseline}
header h1{font-size:17px;margin:0}#status{opacity:.8;font-size:12px}
#board{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:12px;padding:12px}
.channel{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;overflow:hidden}
.channel h2{font-size:15px;margin:0;padding:8px 12px;border-bottom:1px solid #ddd}
.channel.teams h2{background:#ebebf6}.channel h2 small{font-weight:normal;color:#777}
.icon{display:inline-block;width:18px;color:#777}.channel.teams .icon{color:#5b5fc7}
.messages{padding:6px 12px;max-height:calc(100vh - 130px);overflow:auto}
.message{padding:6px 0;border-bottom:1px solid #eee}.meta{font-size:12px;color:#616061}
.time,.edited{color:#999}.reply{margin-left:14px;padding:3px 0 3px 8px;border-left:3px solid #ddd}
.thread-count{font-size:12px;color:#1264a3;margin-top:4px}
.bk-header{font-weight:700;font-size:16px;margin:2px 0}.bk-context{font-size:12px;color:#616061}
.bk-fields{display:grid;grid-template-columns:1fr 1fr;gap:2px 12px}
.bk-actions button,.ac-action{margin:4px 6px 0 0;padding:3px 10px;border:1px solid #bbb;
border-radius:4px;background:#fff;font-size:12px}.bk-actions .primary{background:#007a5a;color:#fff}
.bk-actions .danger{color:#e01e5a}
.mention{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 2px}
.channel.teams .mention{background:none;color:#5b5fc7;font-weight:600}
.date{border-bottom:1px dotted #999}
.ac-card{border:1px solid #e1e1e1;border-radius:6px;padding:8px 10px;margin:4px 0}
.ac-size-large{font-size:18px}.ac-size-medium{font-size:16px}.ac-weight-bolder{font-weight:700}
.ac-color-attention{color:#c4314b}.ac-color-good{color:#237b4b}.ac-color-warning{color:#c19c00}
.ac-subtle{color:#777}.ac-facts th{text-align:left;padding-right:12px;font-weight:600}
.ac-columns{display:flex;gap:8px}.ac-column{flex:1}.unknown{color:#999;font-style:italic}
.empty{color:#999;padding:8px 0}code{background:#f6f6f6;border:1px solid #ddd;padding:0 3px}
"""

_CSP: Final = (
    "default-src 'none'; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()}'; "
    "style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_PAGE: Final = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>callbridge preview</title><style>{_STYLE}</style></head>
<body><header><h1>callbridge · local preview</h1>
<span>dry-run: what Slack and Teams would show, newest first; nothing is posted</span>
<span id="status">connecting…</span></header>
<main id="board"></main>
<script>{_SCRIPT}</script></body></html>
"""

_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def page(request: web.Request) -> web.Response:
    return web.Response(text=_PAGE, content_type="text/html", headers=_HEADERS)


async def state(request: web.Request) -> web.Response:
    preview = request.app[PREVIEW]
    board = preview.board
    version = board.version
    unchanged = request.query.get("since") == str(version)
    html = None if unchanged else board_html(board.channels(preview.names()))
    return web.json_response({"version": version, "html": html}, headers=_HEADERS)


def add_routes(app: web.Application, preview: Preview) -> None:
    app[PREVIEW] = preview
    app.router.add_get(PATH, page)
    app.router.add_get(STATE_PATH, state)
