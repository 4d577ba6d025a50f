// The inspector: everything about one model. Spec table with per-layer shapes and
// parameters, training curves, per-class accuracy, confusion matrix, provenance
// chain, and export links (spec JSON, PyTorch source, trained weights).

import type { ExportFormat, ModelDetail, ModelSummary } from "../types";
import { glyphLegend, glyphSvg } from "../charts/glyph";
import { CurvesChart } from "../charts/curves";
import { ClassBars } from "../charts/bars";
import { ConfusionChart } from "../charts/confusion";
import { h, clear } from "../lib/dom";
import { formatDelta, formatParams, formatPct, formatShape, formatNumber } from "../lib/format";
import { describeLayer, layerColor } from "../lib/layers";
import { inputLabel, readsPrevious } from "../lib/graph";
import { ORIGIN_COLORS } from "../lib/color";
import { exportLinks, missingResultText } from "../lib/status";
import { initSummary } from "../lib/inherit";
import { epochsText } from "../lib/epochs";

export interface InspectorData {
  summary: ModelSummary | null; // from the models list (shown at once)
  detail: ModelDetail | null; // the full model, once fetched
  loading: boolean;
  error: string | null;
  classNames: string[];
  pinned: boolean;
  hoverClass: number | null;
  parentAccuracy: number | null;
  /** Why Δ parent is not like for like: parent and model trained for different epochs. */
  epochWarning?: string | null;
  /**
   * A hand-crafted model's changes relative to its parent, from the comparison's alignment
   * (lib/align `specChanges`), when its record has none (null: not known yet / not needed).
   */
  derivedChanges?: string[] | null;
}

export interface InspectorCallbacks {
  onInspect(id: string): void;
  onTogglePin(id: string): void;
  onGenerate(id: string): void;
  onEdit(id: string): void;
  onHoverClass(i: number | null): void;
  exportUrl(run: string, format: ExportFormat): string;
}

export class Inspector {
  private readonly root: HTMLElement;
  private lastKey = "";

  constructor(container: HTMLElement, private readonly cb: InspectorCallbacks) {
    this.root = h("div", { "data-testid": "inspector" });
    container.appendChild(this.root);
  }

  update(d: InspectorData): void {
    const key = `${d.summary?.id}|${d.detail?.id}|${JSON.stringify((d.detail ?? d.summary)?.init ?? null)}|${d.detail?.wall_time}|${d.summary?.wall_time}|${d.detail?.status.state}|${d.summary?.status.state}|${d.parentAccuracy}|${d.epochWarning ?? ""}|${JSON.stringify(d.derivedChanges ?? null)}|${d.loading}|${d.error}|${d.pinned}|${d.hoverClass}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    clear(this.root);
    const m = d.detail ?? d.summary;
    if (!m) {
      this.root.appendChild(
        h(
          "div",
          { class: "rm-empty", "data-testid": "inspector-empty" },
          h("b", {}, "No model inspected. "),
          "Click a point on the map (or a row in the drawer below) to inspect a model. Shift-click or Shift-drag to select several for comparison; Esc clears the selection.",
        ),
      );
      return;
    }
    this.root.dataset.modelId = m.id;
    const pin = h("button", { class: "rm-btn small", "data-testid": "pin-button" }, d.pinned ? "★ Pinned" : "☆ Pin");
    pin.addEventListener("click", () => this.cb.onTogglePin(m.id));
    const gen = h("button", { class: "rm-btn small", "data-testid": "inspector-generate" }, "Ablate / vary…");
    gen.addEventListener("click", () => this.cb.onGenerate(m.id));
    const edit = h("button", { class: "rm-btn small", "data-testid": "inspector-edit" }, "Open in editor");
    edit.addEventListener("click", () => this.cb.onEdit(m.id));
    this.root.appendChild(
      h(
        "div",
        { style: "display:flex;align-items:flex-start;gap:8px" },
        h(
          "div",
          { style: "flex:1;min-width:0" },
          h("div", { class: "rm-h2" }, m.id),
          h(
            "div",
            {},
            h("span", { class: "rm-origin", style: `background:${ORIGIN_COLORS[m.origin] ?? "#999"}` }, m.origin),
            " ",
            h("span", { class: `rm-state ${m.status.state}` }, m.status.state === "running" ? `running ${m.status.epoch}/${m.status.epochs}` : m.status.state),
            m.parent ? h("span", { class: "rm-muted rm-small" }, `  from ${m.parent}`) : null,
          ),
        ),
        pin,
      ),
    );
    if (m.status.reason) this.root.appendChild(h("div", { class: "rm-banner err", style: "margin-top:6px" }, m.status.reason));
    if (m.changes.length) this.root.appendChild(h("div", { class: "rm-help", "data-testid": "inspector-changes" }, "Changes: " + m.changes.join("; ")));
    else if (d.derivedChanges && m.parent)
      this.root.appendChild(
        h(
          "div",
          { class: "rm-help", "data-testid": "inspector-changes", "data-derived": "true", title: "Worked out from the layer alignment of this model and its parent (as in Compare): the model was made by hand, so no change list was recorded" },
          `Changes vs ${m.parent}: `,
          d.derivedChanges.length ? d.derivedChanges.join("; ") : "none (the same layers)",
        ),
      );
    const init = initSummary(m.init, m.origin, m.status.state);
    if (init) {
      const el = h("div", { class: "rm-init", "data-testid": "inspector-init", "data-init": init.from ? "parent" : "scratch", title: init.from ? "The layers the change left alone (or changed without changing their parameter shapes) started from the parent's trained weights; the others started fresh" : "" });
      if (init.from) {
        const from = init.from;
        const target = from; // a trainer run's name is also its model id
        const link = h("a", { "data-testid": "inspector-init-parent", "data-model-id": target, title: `Inspect ${from}` }, from);
        link.addEventListener("click", () => this.cb.onInspect(target));
        el.append("initialised from ", link, init.text.slice(`initialised from ${from}`.length));
      } else {
        el.append(init.text);
      }
      this.root.appendChild(el);
    }
    const delta = m.val_accuracy !== null && d.parentAccuracy !== null ? m.val_accuracy - d.parentAccuracy : null;
    const testAcc = d.detail?.test && typeof d.detail.test["accuracy"] === "number" ? (d.detail.test["accuracy"] as number) : null;
    this.root.appendChild(
      h(
        "div",
        { class: "rm-kv" },
        kv("Val accuracy", formatPct(m.val_accuracy), delta !== null ? formatDelta(delta) + " vs parent" : null, delta !== null && d.epochWarning ? d.epochWarning : null),
        kv("Train accuracy", formatPct(m.train_accuracy)),
        kv("Parameters", formatParams(m.params), m.params.toLocaleString()),
        kv("Depth", String(m.depth)),
        kv("Trained", epochsText(m)),
        kv("Val loss", formatNumber(m.val_loss)),
        kv("Test accuracy", formatPct(testAcc)),
      ),
    );
    this.root.appendChild(h("div", { style: "display:flex;gap:6px;margin-bottom:12px" }, gen, edit));
    const glyphSec = section("Architecture");
    glyphSec.appendChild(glyphSvg(m.glyph, { height: 40, paramRow: 10, blockWidth: 16, thinWidth: 6, gap: 3 }));
    glyphSec.appendChild(glyphLegend());
    this.root.appendChild(glyphSec);

    if (d.error) {
      this.root.appendChild(h("div", { class: "rm-banner err", "data-testid": "inspector-error" }, `Could not load ${m.id}: ${d.error}`));
      return;
    }
    if (!d.detail) {
      this.root.appendChild(h("div", { class: "rm-muted" }, d.loading ? "Loading the full model…" : ""));
      return;
    }
    const det = d.detail;
    const spec = section("Layers");
    const table = h("table", { class: "rm-table", "data-testid": "spec-table" });
    table.appendChild(h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Layer"), h("th", {}, "Output"), h("th", { class: "num" }, "Params"))));
    const tb = h("tbody");
    const inShape = det.spec.input.shape;
    tb.appendChild(h("tr", {}, h("td", { class: "rm-muted" }, ""), h("td", { class: "rm-muted" }, "input"), h("td", {}, formatShape(inShape)), h("td", {})));
    const total = det.params || 1;
    det.layers.forEach((l) => {
      const specLayer = det.spec.layers[l.index];
      const fn = specLayer && typeof specLayer["fn"] === "string" ? (specLayer["fn"] as string) : undefined;
      const inputs = l.inputs ?? specLayer?.inputs; // absent from records read before schema 2
      const reads = inputs && !readsPrevious(inputs, l.index) ? h("span", { class: "rm-muted", "data-testid": "layer-inputs", title: "the layers it reads" }, ` ← ${inputs.map(inputLabel).join(", ")}`) : null;
      tb.appendChild(
        h(
          "tr",
          { "data-layer": l.index },
          h("td", { class: "rm-muted" }, String(l.index)),
          h("td", {}, h("i", { class: "rm-swatch sq", style: `background:${layerColor(l.type, fn)};margin-right:5px` }), specLayer ? describeLayer(specLayer) : l.type, reads),
          h("td", {}, formatShape(l.output_shape)),
          h("td", { class: "num", title: `${((l.params / total) * 100).toFixed(1)}% of all parameters` }, l.params ? l.params.toLocaleString() : "0"),
        ),
      );
    });
    tb.appendChild(
      h(
        "tr",
        {},
        h("td", {}),
        h("td", {}, h("i", { class: "rm-swatch sq", style: `background:${layerColor("classifier")};margin-right:5px` }), `classifier (flatten + dense ${det.spec.input.num_classes})`),
        h("td", {}, String(det.spec.input.num_classes)),
        h("td", { class: "num" }, det.classifier_params.toLocaleString()),
      ),
    );
    tb.appendChild(h("tr", {}, h("td", {}), h("td", {}, h("b", {}, "total")), h("td", {}), h("td", { class: "num" }, h("b", {}, det.params.toLocaleString()))));
    table.appendChild(tb);
    spec.appendChild(table);
    this.root.appendChild(spec);

    const curves = section("Training curves");
    new CurvesChart(curves).update(det.curves);
    this.root.appendChild(curves);

    const bars = section("Per-class validation accuracy");
    bars.appendChild(h("div", { class: "rm-help" }, "Hover a class to colour the map by it."));
    new ClassBars(bars, { onHoverClass: (i) => this.cb.onHoverClass(i) }, "class-bars").update({
      classNames: d.classNames,
      series: [{ id: det.id, label: det.id, color: "#1565c0", values: det.per_class_accuracy }],
      mode: "absolute",
      highlightClass: d.hoverClass,
      emptyText: missingResultText("per-class accuracy", det.status),
    });
    this.root.appendChild(bars);

    const conf = section("Confusion matrix");
    new ConfusionChart(conf).update({ matrix: det.confusion, classNames: d.classNames, emptyText: missingResultText("confusion matrix", det.status) });
    this.root.appendChild(conf);

    const prov = section("Provenance");
    const ul = h("ul", { class: "rm-chain", "data-testid": "provenance-chain" });
    det.provenance_chain.forEach((c, k) => {
      const link = h("a", { "data-model-id": c.id }, c.id);
      if (k > 0) link.addEventListener("click", () => this.cb.onInspect(c.id));
      ul.appendChild(
        h(
          "li",
          {},
          k === 0 ? h("b", {}, c.id) : link,
          ` · ${c.origin} · ${formatPct(c.val_accuracy)}`,
          c.changes.length ? h("div", { class: "rm-changes", style: "white-space:normal" }, c.changes.join("; ")) : null,
        ),
      );
    });
    prov.appendChild(ul);
    this.root.appendChild(prov);

    const exp = section("Export");
    const links = h("div", { class: "rm-links", "data-testid": "export-links" });
    const reasons: string[] = [];
    for (const l of exportLinks(det.id, det.status)) {
      if (l.disabled) {
        // No file to download: a disabled button that says why (the server would answer 404).
        links.appendChild(h("span", { class: "rm-btn disabled", "aria-disabled": "true", title: l.disabled, "data-testid": `export-${l.format}` }, l.label));
        reasons.push(`${l.label}: ${l.disabled}.`);
      } else {
        links.appendChild(h("a", { class: "rm-btn", href: this.cb.exportUrl(det.run, l.format), download: l.filename, "data-testid": `export-${l.format}` }, l.label));
      }
    }
    exp.appendChild(links);
    for (const r of reasons) exp.appendChild(h("div", { class: "rm-help", "data-testid": "export-disabled-reason" }, r));
    this.root.appendChild(exp);
  }

  dispose(): void {
    this.root.remove();
  }
}

function kv(label: string, value: string, sub: string | null = null, warn: string | null = null): HTMLElement {
  return h(
    "div",
    { "data-kv": label },
    h("span", {}, label),
    h("b", {}, value),
    sub ? h("span", { style: "text-transform:none" }, sub, warn ? h("i", { class: "rm-epoch-warn", "data-testid": "inspector-epochs-warning", title: warn }, " ⚠ other epochs") : null) : null,
  );
}

export function section(title: string): HTMLElement {
  return h("div", { class: "rm-section" }, h("h3", {}, title));
}
