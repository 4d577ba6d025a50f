"""The dashboard's static files: a fixed allow-list, read from ``remap_tb/static/``.

``static/index.js`` is the frontend build (esbuild output of
``remap_tb_frontend/``). When it has not been built, ``index.js`` is a small
built-in ES module whose ``render()`` lists the models and says how to build
the real dashboard. Only names in ``ASSETS`` are ever served; a request path
is never joined into a file path.
"""

from __future__ import annotations

import os

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

# route name -> (file in STATIC_DIR, content type). JS must be text/javascript:
# TensorBoard's responses carry ``X-Content-Type-Options: nosniff``.
ASSETS = {
    "index.js": ("index.js", "text/javascript; charset=utf-8"),
    "index.js.map": ("index.js.map", "application/json; charset=utf-8"),
    "index.css": ("index.css", "text/css; charset=utf-8"),
}

FALLBACK_INDEX_JS = r"""// remap-tb: built-in placeholder (the dashboard bundle static/index.js is not built).
// Build it with: cd remap_tb_frontend && npm install && npm run build
async function getJson(url) {
  const res = await fetch(url, {headers: {Accept: "application/json"}});
  const body = await res.json();
  if (!res.ok) throw new Error(body && body.error ? body.error : res.status + " " + res.statusText);
  return body;
}

function el(tag, text, style) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (style) node.setAttribute("style", style);
  return node;
}

function fmt(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "";
}

export async function render() {
  const root = el("div", undefined, "font-family: Roboto, sans-serif; padding: 16px; font-size: 13px");
  document.body.appendChild(root);
  root.appendChild(el("h2", "REMAP"));
  root.appendChild(el("p", "The REMAP dashboard is not built; this page only lists the models. " +
    "Build it with: cd remap_tb_frontend && npm install && npm run build, then reload.",
    "color: #b45309"));
  try {
    const {experiments, unreadable} = await getJson("./experiments");
    if (!experiments.length) root.appendChild(el("p", "No models yet."));
    for (const exp of experiments) {
      root.appendChild(el("h3", exp.dataset + " (" + exp.id + "): " + exp.n_models + " models"));
      const {models} = await getJson("./models?experiment=" + encodeURIComponent(exp.id));
      const table = el("table", undefined, "border-collapse: collapse");
      const head = el("tr");
      for (const h of ["run", "origin", "parent", "state", "epoch", "params", "depth", "val accuracy"]) {
        head.appendChild(el("th", h, "text-align: left; padding: 2px 10px 2px 0"));
      }
      table.appendChild(head);
      for (const m of models) {
        const row = el("tr");
        const cells = [m.run, m.origin, m.parent || "", m.status.state,
          m.status.epoch + "/" + m.status.epochs, m.params, m.depth, fmt(m.val_accuracy, 3)];
        for (const c of cells) row.appendChild(el("td", c, "padding: 2px 10px 2px 0"));
        if (m.status.reason) row.title = m.status.reason;
        table.appendChild(row);
      }
      root.appendChild(table);
    }
    if (unreadable.length) {
      root.appendChild(el("h3", "Runs that could not be read"));
      const list = el("ul");
      for (const u of unreadable) list.appendChild(el("li", u.run + ": " + u.reason));
      root.appendChild(list);
    }
  } catch (e) {
    root.appendChild(el("p", "Could not load the models: " + e.message, "color: #b91c1c"));
  }
}
"""


def read_asset(name: str) -> tuple[bytes, str] | None:
    """(content, content type) of an allow-listed asset, or None if it is unknown or missing.

    ``index.js`` falls back to ``FALLBACK_INDEX_JS`` when the bundle is not built.
    """
    entry = ASSETS.get(name)
    if entry is None:
        return None
    filename, content_type = entry
    try:
        with open(os.path.join(STATIC_DIR, filename), "rb") as handle:
            return handle.read(), content_type
    except OSError:
        if name == "index.js":
            return FALLBACK_INDEX_JS.encode("utf-8"), content_type
        return None


def has_bundle() -> bool:
    return os.path.isfile(os.path.join(STATIC_DIR, ASSETS["index.js"][0]))
