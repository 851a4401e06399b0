"""The HTML and script of the collector's pages (collector/web.py): the runs, a run's live view, an error.

Every value from the store enters the HTML through `escape.html`; the live view's script writes values
with `textContent` only, and runs from a file of its own under a Content-Security-Policy that allows no
inline script.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from siliconbench.collector.reports.escape import html

POLL_MS = 1500  # how often the live view asks for the run's state while it runs
CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src data:"
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f}
table{border-collapse:collapse}th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f5}
.state{font-weight:600}.bad{color:#b00020}.muted{color:#666}nav a{margin-right:1em}
"""


def _page(title: str, body: str, script: bool = False) -> str:
    tag = '<script src="live.js" defer></script>' if script else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html(title)}</title>'
            f'<link rel="icon" href="data:,"><style>{_STYLE}</style>{tag}</head><body>{body}</body></html>\n')


def _q(value: str) -> str:
    return quote(value, safe="")


def runs_page(rows: list[tuple], store_shown: str) -> str:
    """`runs list`'s rows (collector/rollups.py: id, start, scenario, model, simulated, nodes, target, state),
    each linked to its live view and its report."""
    lines = []
    for run_id, started, scenario, model, simulated, nodes, target, state in rows:
        when = started.strftime("%Y-%m-%d %H:%M:%S") if isinstance(started, datetime) else str(started)
        lines.append(f'<tr><td><a href="run?id={_q(run_id)}">{html(run_id)}</a></td><td>{html(when)}</td>'
                     f'<td class="state">{html(state)}</td><td>{html(scenario or "-")}</td><td>{html(model)}</td>'
                     f'<td>{html(target)}{" <b>SIMULATED</b>" if simulated else ""}</td><td class="n">{nodes}</td>'
                     f'<td><a href="report?run={_q(run_id)}">report</a></td></tr>')
    table = ("<table><thead><tr><th>run</th><th>started (UTC)</th><th>state</th><th>scenario</th><th>model</th>"
             "<th>target</th><th>nodes</th><th></th></tr></thead><tbody>" + "".join(lines) + "</tbody></table>"
             if lines else "<p>No runs yet: `siliconbench bench --target URL` or `run start` makes one.</p>")
    return _page("siliconbench runs", f'<h1>Runs</h1><p class="muted">store {html(store_shown)}, newest first</p>'
                                      f"{table}")


def live_page(run_id: str) -> str:
    """The live view's frame: the script (LIVE_SCRIPT) fills it from /api/live and refreshes it."""
    columns = ("node", "scenario", "instance type", "state", "steps", "requests", "errors", "output tok/s",
               "client saturated", "device util %", "power W", "host CPU %")
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = (f'<nav><a href="./">all runs</a><a id="report" href="report?run={_q(run_id)}">report</a>'
            f'<a id="fleet-report" hidden href="fleet-report?run={_q(run_id)}">fleet report</a>'
            f'<a id="search-report" hidden href="search-report?id={_q(run_id)}">search report</a></nav>'
            f'<h1>Run <span id="run">{html(run_id)}</span></h1>'
            f'<p>State: <span id="state" class="state">loading…</span> <span id="detail" class="muted"></span></p>'
            f'<p id="what" class="muted"></p>'
            f'<table><thead><tr>{head}</tr></thead><tbody id="nodes"></tbody></table>'
            f'<p class="muted">Updated <span id="updated">never</span>; <span id="error" class="bad"></span></p>')
    return _page(f"siliconbench run {run_id}", f'<main id="live" data-run="{html(run_id)}" '
                                               f'data-poll-ms="{POLL_MS}">{body}</main>', script=True)


def error_page(message: str) -> str:
    return _page("siliconbench: error", f'<nav><a href="./">all runs</a></nav><p class="bad">{html(message)}</p>')


LIVE_SCRIPT = r"""'use strict';
(function () {
  const main = document.getElementById('live');
  const runId = main.dataset.run;
  const pollMs = Number(main.dataset.pollMs);
  const ENDED = new Set(['finished', 'cancelled', 'failed', 'complete', 'interrupted', 'aborted', 'incomplete']);
  const num = (v, digits) => (v === null || v === undefined) ? '–' : Number(v).toFixed(digits);
  const text = (id, value) => { document.getElementById(id).textContent = value; };

  function cell(row, value, numeric, cls) {
    const td = row.insertCell();
    td.textContent = value;
    if (numeric) td.className = 'n';
    if (cls) td.classList.add(cls);
    td.dataset.v = value;
  }

  function render(run) {
    text('state', run.state);
    text('detail', run.detail ? '(' + run.detail + ')' : '');
    text('what', [run.model, run.target, run.simulated ? 'SIMULATED' : ''].filter(Boolean).join(' · '));
    document.getElementById('fleet-report').hidden = !run.fleet;
    document.getElementById('search-report').hidden = !run.search;
    const rows = document.getElementById('nodes');
    rows.replaceChildren();
    for (const n of run.nodes) {
      const row = rows.insertRow();
      row.dataset.agent = n.agent_id;
      cell(row, n.node_name || n.agent_id);
      cell(row, n.scenario || '-');
      cell(row, n.instance_type || '-');
      cell(row, n.state || run.state, false, 'state');
      cell(row, n.steps_total ? n.steps_done + '/' + n.steps_total : String(n.steps_done), true);
      cell(row, String(n.requests), true);
      cell(row, String(n.errors), true, n.errors ? 'bad' : '');
      cell(row, num(n.output_tokens_per_s, 1), true);
      cell(row, n.saturated === null ? '–' : (n.saturated ? 'yes' : 'no'), false, n.saturated ? 'bad' : '');
      cell(row, num(n.device_util_pct, 0), true);
      cell(row, num(n.power_w, 0), true);
      cell(row, num(n.host_cpu_pct, 0), true);
    }
    text('updated', new Date(run.updated_unix_s * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC');
  }

  async function refresh() {
    let ended = false;
    try {
      const response = await fetch('api/live?run=' + encodeURIComponent(runId),
                                   {credentials: 'same-origin', cache: 'no-store'});
      const body = await response.json();
      if (response.ok) {
        render(body);
        text('error', '');
        ended = ENDED.has(body.state);
      } else {
        text('error', body.error || ('HTTP ' + response.status));
      }
    } catch (err) {
      text('error', 'the collector did not answer: ' + err.message);
    }
    main.dataset.refreshed = String(Number(main.dataset.refreshed || 0) + 1);
    if (!ended) setTimeout(refresh, pollMs);
  }
  refresh();
})();
"""
