"""The live page: every source with its annotated MJPEG view and a few numbers, refreshed by a
small script from /api/sources. No external files: it works without network access."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from streamproc import __version__

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1rem 2rem; background: #fafafa; color: #222; }
h1 { font-size: 1.3rem; } nav a { margin-right: 1rem; }
.sources { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; background: #fff; padding: .5rem; border: 1px solid #ddd; border-radius: 4px; }
figure img { display: block; max-width: 100%; background: #333; }
figcaption { margin-top: .4rem; font-size: .9rem; }
.state { font-weight: bold; } .failed, .reconnecting { color: #b00; } .streaming { color: #070; }
"""

SCRIPT = """
async function refresh() {
  try {
    const answer = await fetch('api/sources');
    const data = await answer.json();
    for (const source of data.sources) {
      const caption = document.querySelector(`figcaption[data-source="${CSS.escape(source.id)}"]`);
      if (!caption) continue;
      const state = caption.querySelector('.state');
      state.textContent = source.state;
      state.className = 'state ' + source.state;
      caption.querySelector('.numbers').textContent =
        `${source.fps.toFixed(1)} fps, ${source.faces} face(s), ${source.frames_processed} frames` +
        (source.last_error ? ` - ${source.last_error}` : '');
    }
  } catch (error) { /* the server may be gone at the end of a file run: keep the last view */ }
}
refresh();
setInterval(refresh, 2000);
// streams start after the page's load event: an endless MJPEG would otherwise keep the page loading
window.addEventListener('load', () => {
  for (const img of document.querySelectorAll('img[data-live]')) img.src = img.dataset.live;
});
"""


def live_page(source_ids: list[str]) -> str:
    """The HTML page listing ``source_ids`` with their live views."""
    figures = "\n".join(_figure(source_id) for source_id in source_ids) or "<p>No source is open yet.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamproc live view</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body><h1>streamproc {escape(__version__)} - live view</h1>
<nav><a href="api/sources">sources</a><a href="api/stats">stats</a><a href="metrics">metrics</a><a
href="readyz">ready?</a><a href="docs">API</a></nav>
<div class="sources">
{figures}
</div>
<script>{SCRIPT}</script></body></html>
"""


def _figure(source_id: str) -> str:
    url = "live/" + quote(source_id, safe="")
    name = escape(source_id)
    return (
        f'<figure><img data-live="{url}.mjpeg" alt="live view of {name}" data-source="{name}">'
        f'<figcaption data-source="{name}"><b>{name}</b> <span class="state">?</span> '
        f'<span class="numbers"></span> <a href="{url}.jpg">still</a></figcaption></figure>'
    )
