// The dashboard's stylesheet, injected once as a <style> element (the plugin page's
// CSP allows inline styles; nothing is loaded from elsewhere).

const CSS = `
:root { --rm-accent:#f57c00; --rm-accent-soft:#fff3e0; --rm-border:#e0e0e0; --rm-text:#212121;
  --rm-muted:#757575; --rm-bg:#f5f5f5; --rm-panel:#ffffff; --rm-sel:#1565c0; --rm-err:#c62828; --rm-ok:#2e7d32; }
html, body { margin:0; height:100%; }
body { font-family: Roboto, "Helvetica Neue", Arial, system-ui, sans-serif; font-size:13px; color:var(--rm-text);
  background:var(--rm-bg); overflow:hidden; }
.rm-root { display:grid; grid-template-columns: minmax(360px, 1fr) 460px; grid-template-rows: auto minmax(0,1fr) clamp(230px, 38vh, 420px);
  height:100vh; gap:0; }
.rm-toolbar { grid-column:1 / 3; display:flex; align-items:center; gap:12px; padding:6px 12px; background:var(--rm-panel);
  border-bottom:1px solid var(--rm-border); flex-wrap:wrap; min-height:36px; }
.rm-toolbar .rm-title { font-weight:500; font-size:14px; margin-right:6px; }
.rm-group { display:flex; align-items:center; gap:4px; }
.rm-group > label.rm-lbl { color:var(--rm-muted); font-size:12px; margin-right:2px; }
.rm-seg { display:inline-flex; border:1px solid var(--rm-border); border-radius:4px; overflow:hidden; }
.rm-seg button { border:0; border-right:1px solid var(--rm-border); background:#fff; padding:4px 10px; cursor:pointer;
  font:inherit; color:var(--rm-text); }
.rm-seg button:last-child { border-right:0; }
.rm-seg button.on { background:var(--rm-accent-soft); color:#e65100; font-weight:500; }
.rm-btn { border:1px solid var(--rm-border); background:#fff; border-radius:4px; padding:4px 10px; cursor:pointer; font:inherit;
  color:var(--rm-text); }
.rm-btn:hover { background:#fafafa; border-color:#bdbdbd; }
.rm-btn.on { background:var(--rm-accent-soft); border-color:#ffb74d; color:#e65100; }
.rm-btn.primary { background:var(--rm-accent); border-color:var(--rm-accent); color:#fff; font-weight:500; }
.rm-btn.primary:hover { background:#ef6c00; }
input.rm-invalid { border-color:var(--rm-err); outline-color:var(--rm-err); }
.rm-btn:disabled, .rm-btn.disabled { opacity:.5; cursor:not-allowed; }
.rm-btn.disabled:hover { background:#fff; border-color:var(--rm-border); }
.rm-btn.small { padding:1px 6px; font-size:12px; }
select, input[type=number], input[type=text] { font:inherit; border:1px solid var(--rm-border); border-radius:4px; padding:3px 5px;
  background:#fff; color:var(--rm-text); }
input[type=number] { width:72px; }
.rm-mapwrap { position:relative; background:#fff; border-right:1px solid var(--rm-border); min-width:0; min-height:0; overflow:hidden; }
.rm-mapwrap canvas { position:absolute; left:0; top:0; }
.rm-map-overlay { position:absolute; left:0; top:0; pointer-events:none; }
.rm-map-note { position:absolute; left:50%; top:45%; transform:translate(-50%,-50%); z-index:4; background:rgba(255,255,255,.92);
  border:1px solid var(--rm-border); border-radius:6px; padding:10px 16px; color:var(--rm-muted); pointer-events:none; }
.rm-map-info { position:absolute; left:10px; bottom:8px; color:var(--rm-muted); font-size:11px; pointer-events:none;
  background:rgba(255,255,255,.85); padding:2px 6px; border-radius:3px; }
.rm-map-legend { position:absolute; right:10px; top:8px; font-size:11px; background:rgba(255,255,255,.85);
  border:1px solid var(--rm-border); border-radius:4px; padding:6px 8px; pointer-events:none; max-width:220px; }
.rm-map-legend.bottom { top:auto; bottom:84px; }
.rm-map-legend .row { display:flex; align-items:center; gap:6px; margin:2px 0; }
.rm-swatch { display:inline-block; width:10px; height:10px; border-radius:50%; }
.rm-swatch.sq { border-radius:2px; }
.rm-ramp { width:120px; height:8px; border-radius:2px; }
.rm-tooltip { position:absolute; pointer-events:none; background:#fff; border:1px solid #bdbdbd; border-radius:4px;
  box-shadow:0 2px 8px rgba(0,0,0,.15); padding:8px 10px; font-size:12px; display:none; z-index:20; max-width:320px; }
.rm-tooltip .tt-title { font-weight:500; margin-bottom:4px; }
.rm-tooltip .tt-grid { display:grid; grid-template-columns:auto auto; gap:1px 10px; margin-top:4px; }
.rm-tooltip .tt-grid span:nth-child(odd) { color:var(--rm-muted); }
.rm-side { grid-row:2 / 4; grid-column:2; display:flex; flex-direction:column; background:var(--rm-panel); min-height:0; }
.rm-tabs { display:flex; border-bottom:1px solid var(--rm-border); overflow-x:auto; flex:none; }
.rm-tabs button { border:0; background:none; padding:9px 8px; cursor:pointer; font:inherit; color:var(--rm-muted);
  border-bottom:2px solid transparent; white-space:nowrap; text-transform:uppercase; font-size:11.5px; letter-spacing:.2px; flex:1 0 auto; }
.rm-tabs button.on { color:var(--rm-text); border-bottom-color:var(--rm-accent); font-weight:500; }
.rm-tabs .badge { background:var(--rm-accent); color:#fff; border-radius:8px; padding:0 5px; font-size:10px; margin-left:4px; }
.rm-tabpanel { flex:1; overflow:auto; padding:12px; min-height:0; }
.rm-root.rm-no-models { grid-template-rows: auto minmax(0,1fr) 0; }
.rm-root.rm-no-models .rm-drawer { display:none; }
.rm-drawer { grid-column:1; grid-row:3; background:var(--rm-panel); border-top:1px solid var(--rm-border);
  border-right:1px solid var(--rm-border); display:flex; flex-direction:column; min-height:0; }
.rm-drawer-head { display:flex; align-items:center; gap:10px; padding:4px 12px; border-bottom:1px solid var(--rm-border);
  color:var(--rm-muted); font-size:12px; }
.rm-drawer-head b { color:var(--rm-text); font-weight:500; }
.rm-drawer-body { overflow:auto; flex:1; }
table.rm-table { border-collapse:collapse; width:100%; font-size:12px; }
table.rm-table th { position:sticky; top:0; background:#fafafa; text-align:left; font-weight:500; color:var(--rm-muted);
  padding:4px 8px; border-bottom:0; box-shadow:inset 0 -1px 0 var(--rm-border); white-space:nowrap; z-index:3; background-clip:padding-box; }
/* Sticky things in a padded tab panel stick at the panel's edge, not inside its 12px padding
   (where the rows scrolling past would show through); opaque, above the content. */
.rm-tabpanel table.rm-table th { top:-12px; }
.rm-sticky-bottom { position:sticky; bottom:-12px; z-index:3; background:#fff; padding:8px 0;
  display:flex; gap:8px; align-items:center; box-shadow:0 -1px 0 var(--rm-border); }
table.rm-table th.sortable { cursor:pointer; user-select:none; }
table.rm-table th.sorted { color:var(--rm-text); }
table.rm-table td { padding:3px 8px; border-bottom:1px solid #f0f0f0; vertical-align:middle; }
table.rm-table td.num, table.rm-table th.num { text-align:right; font-variant-numeric:tabular-nums; }
table.rm-table tr.clickable { cursor:pointer; }
table.rm-table tr.clickable:hover td { background:#fafafa; }
table.rm-table tr.inspected td { background:var(--rm-accent-soft); }
.rm-muted { color:var(--rm-muted); }
.rm-small { font-size:11px; }
.rm-changes { color:var(--rm-muted); font-size:11px; max-width:100%; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.rm-drawer .rm-changes { max-width:180px; display:inline-block; vertical-align:middle; margin-left:4px; }
.rm-drawer table.rm-table td { padding:2px 8px; white-space:nowrap; height:18px; }
.rm-drawer table.rm-table td svg { display:block; }
.rm-drawer table.rm-table td input[type=checkbox] { margin:0 4px 0 0; vertical-align:middle; }
.rm-drawer table.rm-table td .rm-btn.small { padding:0 2px; line-height:16px; vertical-align:middle; }
.rm-drawer table.rm-table tr.rm-filtered td { color:#9e9e9e; }
.rm-epoch-warn { color:#e65100; cursor:help; font-style:normal; }
.rm-dup-link { color:var(--rm-sel); font-weight:500; }
@keyframes rm-flash { 0% { background:#ffe0b2; } 100% { background:transparent; } }
.rm-flash { animation: rm-flash 1.6s ease-out; }
.rm-banner.rm-flash { animation: none; }
.rm-tracker { border-top:1px solid var(--rm-border); padding:6px 12px; background:#fffaf2; font-size:12px; }
.rm-tracker-head { display:flex; align-items:center; gap:4px; margin-bottom:2px; }
.rm-tracker-row { display:grid; grid-template-columns: minmax(0,1fr) 70px auto auto; gap:6px; align-items:center; padding:2px 0; }
.rm-tracker-id { overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.rm-tracker a { color:var(--rm-sel); cursor:pointer; }
.rm-pos { color:var(--rm-ok); } .rm-neg { color:var(--rm-err); }
.rm-origin { display:inline-block; padding:0 6px; border-radius:8px; font-size:11px; color:#fff; }
.rm-state { display:inline-block; padding:0 6px; border-radius:8px; font-size:11px; background:#eeeeee; color:#424242; }
.rm-state.running { background:#e3f2fd; color:#0d47a1; } .rm-state.done { background:#e8f5e9; color:#1b5e20; }
.rm-state.failed, .rm-state.diverged { background:#ffebee; color:#b71c1c; } .rm-state.pending, .rm-state.queued { background:#fff3e0; color:#e65100; }
.rm-state.cancelled { background:#f5f5f5; color:#9e9e9e; }
.rm-section { margin-bottom:16px; }
.rm-section h3 { font-size:12px; font-weight:500; text-transform:uppercase; letter-spacing:.4px; color:var(--rm-muted);
  margin:0 0 6px; }
.rm-h2 { font-size:15px; font-weight:500; margin:0 0 2px; word-break:break-all; }
.rm-kv { display:grid; grid-template-columns:repeat(3, 1fr); gap:6px; margin:8px 0; }
.rm-kv div { background:#fafafa; border:1px solid #eeeeee; border-radius:4px; padding:4px 6px; }
.rm-kv div span { display:block; color:var(--rm-muted); font-size:10px; text-transform:uppercase; }
.rm-kv div b { font-weight:500; font-size:13px; }
.rm-empty { color:var(--rm-muted); padding:16px 4px; line-height:1.5; }
.rm-empty-big { position:absolute; inset:0; display:flex; align-items:center; justify-content:center; background:#fff; z-index:5; }
.rm-empty-big > div { max-width:520px; line-height:1.6; }
.rm-empty-big h2 { font-weight:400; font-size:20px; margin:0 0 8px; }
.rm-code { font-family: "Roboto Mono", Menlo, Consolas, monospace; background:#f5f5f5; border:1px solid #e0e0e0; border-radius:3px; white-space:nowrap;
  padding:1px 5px; font-size:12px; user-select:all; }
.rm-banner { padding:8px 12px; border-radius:4px; margin-bottom:8px; line-height:1.5; }
.rm-banner.warn { background:#fff8e1; border:1px solid #ffcc80; color:#5d4037; }
.rm-banner.err { background:#ffebee; border:1px solid #ef9a9a; color:#b71c1c; }
.rm-banner.ok { background:#e8f5e9; border:1px solid #a5d6a7; color:#1b5e20; }
.rm-errors { position:fixed; top:52px; left:12px; z-index:50; display:flex; flex-direction:column;
  gap:6px; max-width:min(600px, calc(100vw - 520px)); }
.rm-errors .rm-banner { box-shadow:0 2px 8px rgba(0,0,0,.15); display:flex; gap:10px; align-items:flex-start; margin:0; }
.rm-errors .rm-banner button { border:0; background:none; cursor:pointer; color:inherit; font-size:14px; }
.rm-form { display:grid; grid-template-columns: 130px 1fr; gap:6px 10px; align-items:center; margin-bottom:10px; }
.rm-form > label { color:var(--rm-muted); font-size:12px; }
.rm-checks { display:flex; flex-wrap:wrap; gap:4px 10px; }
.rm-checks label { display:inline-flex; align-items:center; gap:3px; font-size:12px; }
.rm-cand { display:grid; grid-template-columns: 22px 1fr auto; gap:2px 8px; align-items:center; padding:6px 4px;
  border-bottom:1px solid #f0f0f0; }
.rm-cand.invalid { background:#fff8f8; }
.rm-cand .reason { grid-column:2 / 4; color:var(--rm-err); font-size:11px; }
.rm-cand .chg { grid-column:2 / 4; color:var(--rm-muted); font-size:11px; }
.rm-cand .pred { grid-column:2 / 4; display:flex; align-items:center; gap:6px; }
.rm-cand .pred svg { flex:none; }
.rm-cand.suggested { background:#f3f8ff; }
.rm-suggested { display:inline-block; padding:0 6px; margin-right:6px; border-radius:8px; font-size:10px; color:#fff;
  background:#1565c0; text-transform:uppercase; letter-spacing:.03em; }
.rm-cand-head { display:flex; align-items:center; justify-content:space-between; gap:8px; }
.rm-cand-head h3 { margin:0; }
.rm-suggest { display:inline-flex; align-items:center; gap:4px; font-size:12px; color:var(--rm-muted); }
.rm-init { font-size:12px; margin:4px 0 8px; }
.rm-init a { color:var(--rm-sel); cursor:pointer; text-decoration:none; }
.rm-editor-layer { display:grid; grid-template-columns: 26px 14px 1fr auto; gap:4px 8px; align-items:center;
  padding:5px 6px; border:1px solid var(--rm-border); border-radius:4px; background:#fff; margin:0; }
.rm-editor-layer.err { border-color:#ef9a9a; background:#fffafa; }
.rm-editor-layer .fields { display:flex; flex-wrap:wrap; gap:4px 8px; align-items:center; }
.rm-editor-layer .fields label { font-size:11px; color:var(--rm-muted); display:inline-flex; gap:3px; align-items:center; }
.rm-editor-layer .fields input[type=number] { width:58px; }
.rm-editor-layer .fields select[data-field=padding] { width:88px; }
.rm-editor-layer .fields input[data-field=padding-pixels] { width:42px; }
.rm-editor-layer .shape { font-size:11px; color:var(--rm-muted); text-align:right; white-space:nowrap; }
.rm-editor-layer .lerr { grid-column: 2 / 5; color:var(--rm-err); font-size:12px; }
.rm-links-row { grid-column: 3 / 5; display:flex; flex-wrap:wrap; gap:3px 5px; align-items:center; font-size:11px;
  padding:1px 3px; border:1px solid transparent; border-radius:3px; }
.rm-links-row.bad { border-color:#c62828; }
.rm-links-row select { font-size:11px; padding:0 2px; max-width:130px; }
.rm-in-chip { display:inline-flex; align-items:center; gap:2px; border:1px solid #bdbdbd; border-radius:9px; padding:0 6px;
  background:#f5f5f5; font-variant-numeric:tabular-nums; }
.rm-in-chip.implicit { border-style:dashed; background:#fff; color:var(--rm-muted); }
.rm-in-chip .rm-x { border:0; background:none; padding:0 0 0 2px; cursor:pointer; color:#757575; font-size:10px; line-height:1; }
.rm-in-chip .rm-x:hover { color:var(--rm-err); }
.rm-slot { height:8px; margin:1px 0; border-radius:3px; position:relative; }
.rm-slot:hover, .rm-slot.drop { background:var(--rm-accent-soft); outline:1px dashed #ffb74d; }
.rm-slot.active { background:var(--rm-accent-soft); outline:1px solid var(--rm-accent); }
.rm-palette { display:flex; flex-wrap:wrap; gap:4px; margin-bottom:8px; }
.rm-palette .rm-chip { cursor:grab; border:1px solid var(--rm-border); border-radius:12px; padding:2px 9px 2px 6px; background:#fff;
  display:inline-flex; align-items:center; gap:5px; font-size:12px; user-select:none; }
.rm-palette .rm-chip:hover { border-color:#bdbdbd; }
.rm-budget { height:8px; background:#eeeeee; border-radius:4px; overflow:hidden; margin:4px 0; }
.rm-budget > div { height:100%; background:var(--rm-ok); }
.rm-budget.over > div { background:var(--rm-err); }
.rm-progress { display:inline-block; width:70px; height:6px; background:#eeeeee; border-radius:3px; overflow:hidden;
  vertical-align:middle; margin-right:4px; }
.rm-progress > div { height:100%; background:#1e88e5; }
.rm-legend-glyph { display:flex; flex-wrap:wrap; gap:4px 10px; font-size:11px; color:var(--rm-muted); }
.rm-legend-glyph span { display:inline-flex; align-items:center; gap:4px; }
.rm-filters { position:absolute; left:8px; top:8px; z-index:10; background:#fff; border:1px solid var(--rm-border); border-radius:6px;
  box-shadow:0 2px 10px rgba(0,0,0,.12); padding:10px 12px; width:330px; display:none; }
.rm-filters.open { display:block; }
.rm-filters .rm-form { grid-template-columns: 90px 1fr; }
.rm-classes .row { display:grid; grid-template-columns: 110px 1fr 52px; gap:8px; align-items:center; padding:3px 4px;
  border-radius:3px; cursor:pointer; }
.rm-classes .row:hover, .rm-classes .row.on { background:var(--rm-accent-soft); }
.rm-classes .bar { height:10px; background:#eeeeee; border-radius:2px; position:relative; }
.rm-classes .bar > div { position:absolute; left:0; top:0; bottom:0; background:#1565c0; border-radius:2px; }
.rm-chain { list-style:none; padding:0; margin:0; }
.rm-chain li { padding:3px 0 3px 12px; border-left:2px solid var(--rm-border); position:relative; font-size:12px; }
.rm-chain li::before { content:""; position:absolute; left:-5px; top:8px; width:8px; height:8px; border-radius:50%; background:#bdbdbd; }
.rm-chain li:first-child::before { background:var(--rm-accent); }
.rm-chain a { color:var(--rm-sel); cursor:pointer; text-decoration:none; }
.rm-links { display:flex; gap:6px; flex-wrap:wrap; }
a.rm-btn { text-decoration:none; display:inline-block; }
.rm-dist td { text-align:center; font-variant-numeric:tabular-nums; }
.rm-help { color:var(--rm-muted); font-size:11px; margin:4px 0 8px; line-height:1.4; }
svg text { font-family: inherit; }
`;

export function injectStyle(doc: Document = document): void {
  if (doc.getElementById("remap-style")) return;
  const el = doc.createElement("style");
  el.id = "remap-style";
  el.textContent = CSS;
  doc.head.appendChild(el);
}
