// The layer editor: start from a model or from empty; a palette of layer types
// (drag onto a slot, or click to insert at the active slot); edit fields in
// place; move and remove layers. The palette and the field editors come from the
// server's schema (GET schema), handed in by the app with setSchema(). Every change is validated live by the server
// (POST validate): per-layer shapes and parameters, the total against the
// budget, and each error next to the layer at fault. Enqueue as handcrafted.
//
// Branching architectures (spec schema 2, when the server's schema says `inputs`):
// each row shows what the layer reads as removable chips, with "+ from…" to add a
// connection from an earlier layer or the network input, and "skip from…" to insert
// an `add` after the layer that sums it with an earlier one. Inserting, removing and
// moving layers keep connections pointing at the same layers (lib/graph.ts). The spec
// says "schema": 2 only when it uses a schema 2 feature.
//
// A model started from another one (a hand-crafted child) starts from its parent's
// trained weights or from scratch (issue 10: `init`, default the parent's weights
// when the parent finished).

import type { EnqueueRequest, EnqueueResponse, GlyphLayer, InitMode, Layer, ModelDetail, ModelSummary, SchemaField, SchemaResponse, Spec, State, ValidateRequest, ValidateResponse } from "../types";
import { glyphSvg } from "../charts/glyph";
import { h, clear } from "../lib/dom";
import { formatParams, formatShape } from "../lib/format";
import { TYPE_LABELS, layerColor } from "../lib/layers";
import { defaultText, fieldLabel, fieldStep, knowsType, newLayer, parseFieldInput, placeholderText } from "../lib/schema";
import { MERGE_TYPES, addInput, addSkip, inputChoices, inputLabel, inputsOf, insertLayer, moveLayer, readsPrevious, removeInput, removeLayer, withSchemaVersion } from "../lib/graph";
import { EnqueueHistory, enqueueMessage } from "../lib/enqueue";
import { explainServerError, intField } from "../lib/form";
import { defaultInit, EPOCHS_TITLE, handcraftedItem, INIT_LABELS, parentFinished } from "../lib/inherit";
import { specChanges } from "../lib/align";
import { duplicateId, errorDuplicate, resolveDuplicate } from "../lib/duplicate";
import { ApiError } from "../client";
import { duplicateLink, duplicateRef, duplicatesNote, withDuplicateLink } from "./duplicate";

export interface EditorData {
  inspected: ModelSummary | null;
  budget: number | null;
  experiment: string | null;
  /** Every model of the experiment (to name and link the model a duplicate duplicates). */
  models?: ModelSummary[];
}

/** The server's limits on a provenance change list (remap_tb/requests.py). */
const MAX_CHANGES = 100;
const MAX_CHANGE_LENGTH = 300;

/**
 * The change list recorded with a hand-crafted child (issue 11): its changes relative to the
 * parent, from the comparison's alignment (lib/align `specChanges`), within the server's limits.
 */
export function handcraftedChanges(parent: Spec, child: Spec): string[] {
  const all = specChanges(parent.layers, child.layers);
  if (JSON.stringify(parent.input) !== JSON.stringify(child.input)) all.unshift("changed the input");
  const out = all.map((c) => (c.length > MAX_CHANGE_LENGTH ? c.slice(0, MAX_CHANGE_LENGTH - 1) + "…" : c));
  return out.length > MAX_CHANGES ? [...out.slice(0, MAX_CHANGES - 1), `… and ${out.length - MAX_CHANGES + 1} more changes`] : out;
}

export interface EditorCallbacks {
  validate(req: ValidateRequest): Promise<ValidateResponse>;
  enqueue(req: EnqueueRequest): Promise<EnqueueResponse>;
  loadModel(run: string): Promise<ModelDetail>;
  /** The experiment's input (shape, classes) for a model started from empty. */
  defaultInput(): Spec["input"] | null;
  onEnqueued(ids: string[]): void;
  /** Inspect a model (the parent, or a duplicate's existing model). */
  onInspect?(id: string): void;
}

/** The glyph of an edited spec, from the server's validation (unknown shapes drawn flat). */
export function glyphFromValidation(v: ValidateResponse, spec: Spec): GlyphLayer[] {
  const out: GlyphLayer[] = v.layers.map((l) => {
    const layer = spec.layers[l.index];
    const g: GlyphLayer = { index: l.index, type: l.type, output_shape: l.output_shape, params: l.params };
    if (layer && typeof layer["fn"] === "string") g.fn = layer["fn"] as string;
    if (layer && typeof layer["rate"] === "number") g.rate = layer["rate"] as number;
    const inputs = l.inputs?.length ? l.inputs : layer?.inputs; // [] = invalid inputs: draw what the spec says
    if (inputs && !readsPrevious(inputs, l.index)) g.inputs = [...inputs];
    return g;
  });
  out.push({ index: spec.layers.length, type: "classifier", output_shape: [spec.input.num_classes], params: v.classifier_params });
  return out;
}

interface RowRefs {
  row: HTMLElement;
  shape: HTMLElement;
  err: HTMLElement;
  inputs: Map<string, HTMLInputElement | HTMLSelectElement>;
  /** The row's connections control (null on a server without schema 2). */
  links: HTMLElement | null;
}

export class EditorView {
  private readonly root: HTMLElement;
  private readonly headEl: HTMLElement;
  private readonly glyphEl: HTMLElement;
  private readonly listEl: HTMLElement;
  private readonly totalsEl: HTMLElement;
  private readonly specErrEl: HTMLElement;
  private readonly messageEl: HTMLElement;
  private readonly enqueueBtn: HTMLButtonElement;
  private readonly epochs: HTMLInputElement;
  private readonly paletteEl: HTMLElement;
  private schema: SchemaResponse | null = null;
  private spec: Spec | null = null;
  private parent: string | null = null;
  /** The parent's spec as loaded (the change list is relative to it). */
  private parentSpec: Spec | null = null;
  private parentState: State | null = null; // the parent's state when it was loaded
  private readonly initSelect: HTMLSelectElement;
  private readonly initWrap: HTMLElement;
  private activeSlot: number | null = null; // insert position for palette clicks (null = end)
  private rows: RowRefs[] = [];
  private validation: ValidateResponse | null = null;
  private validating = 0; // request sequence number
  private timer = 0;
  private data: EditorData | null = null;
  private readonly history = new EnqueueHistory();

  constructor(container: HTMLElement, private readonly cb: EditorCallbacks) {
    this.root = h("div", { "data-testid": "editor" });
    container.appendChild(this.root);
    this.headEl = h("div", { class: "rm-section" });
    this.root.appendChild(this.headEl);
    this.paletteEl = h("div", { class: "rm-palette", "data-testid": "editor-palette" }, h("span", { class: "rm-muted rm-small" }, "Loading the layer types…"));
    this.root.appendChild(h("div", { class: "rm-section" }, h("h3", {}, "Palette"), this.paletteEl));
    this.glyphEl = h("div", { style: "margin-bottom:8px;min-height:30px", "data-testid": "editor-glyph" });
    this.specErrEl = h("div", {});
    this.listEl = h("div", { "data-testid": "editor-layers" });
    this.totalsEl = h("div", { class: "rm-section", "data-testid": "editor-totals" });
    this.root.append(h("div", { class: "rm-section" }, h("h3", {}, "Layers"), this.glyphEl, this.specErrEl, this.listEl), this.totalsEl);
    this.epochs = h("input", { type: "number", min: 1, max: 1000, step: 1, placeholder: "default", "data-testid": "editor-epochs", title: EPOCHS_TITLE }) as HTMLInputElement;
    this.enqueueBtn = h("button", { class: "rm-btn primary", "data-testid": "editor-enqueue" }, "Enqueue as handcrafted");
    this.enqueueBtn.addEventListener("click", () => void this.enqueue());
    this.messageEl = h("div", { "data-testid": "editor-message" });
    this.initSelect = h("select", { "data-testid": "editor-init", title: "Where the model's weights start: its parent's trained weights (layers left alone, or changed without changing their parameter shapes) or a fresh initialisation" }) as HTMLSelectElement;
    for (const m of ["parent", "scratch"] as const) this.initSelect.appendChild(h("option", { value: m }, INIT_LABELS[m]));
    this.initWrap = h("label", { class: "rm-muted rm-small", "data-testid": "editor-init-row", style: "display:none" }, "weights ", this.initSelect);
    this.root.append(h("div", { style: "display:flex;gap:8px;align-items:center;margin:8px 0;flex-wrap:wrap" }, this.enqueueBtn, h("label", { class: "rm-muted rm-small" }, "epochs "), this.epochs, this.initWrap), this.messageEl);
    this.render();
  }

  /** The layer schema from the server (null with an error message when it could not be read). */
  setSchema(schema: SchemaResponse | null, error: string | null = null): void {
    this.schema = schema;
    clear(this.paletteEl);
    if (!schema) {
      this.paletteEl.appendChild(h("div", { class: "rm-banner err", "data-testid": "editor-schema-error" }, `Could not read the layer schema: ${error ?? "unknown error"}. Reload the tab to try again.`));
    } else {
      for (const t of schema.layer_types) {
        const chip = h("span", { class: "rm-chip", draggable: "true", "data-type": t, "data-testid": `palette-${t}`, title: `Drag onto a slot, or click to insert ${TYPE_LABELS[t] ?? t} at the highlighted slot` }, h("i", { class: "rm-swatch sq", style: `background:${layerColor(t)}` }), TYPE_LABELS[t] ?? t);
        chip.addEventListener("dragstart", (e) => {
          e.dataTransfer?.setData("text/x-remap-layer", t);
          e.dataTransfer?.setData("text/plain", t);
        });
        chip.addEventListener("click", () => this.insert(t, this.activeSlot ?? this.spec?.layers.length ?? 0));
        this.paletteEl.appendChild(chip);
      }
    }
    if (this.spec) this.render();
  }

  update(d: EditorData): void {
    const budgetChanged = this.data?.budget !== d.budget;
    this.data = d;
    this.renderHead();
    if (budgetChanged && this.spec) this.scheduleValidate(0);
  }

  /** Start from a model's spec. */
  load(detail: ModelDetail): void {
    this.spec = JSON.parse(JSON.stringify(detail.spec)) as Spec;
    this.parent = detail.id;
    this.parentSpec = JSON.parse(JSON.stringify(detail.spec)) as Spec;
    this.parentState = detail.status.state;
    this.initSelect.value = defaultInit([detail.status.state]);
    this.activeSlot = null;
    clear(this.messageEl);
    this.render();
    this.scheduleValidate(0);
  }

  private startEmpty(): void {
    const input = this.cb.defaultInput();
    if (!input) {
      this.showMessage("warn", "No experiment to take the input shape from: train a first population with remap init.");
      return;
    }
    this.spec = { schema: 1, input: { shape: [...input.shape], num_classes: input.num_classes }, layers: [] };
    this.parent = null;
    this.parentSpec = null;
    this.parentState = null;
    this.activeSlot = null;
    clear(this.messageEl);
    this.render();
    this.scheduleValidate(0);
  }

  private async loadInspected(): Promise<void> {
    const m = this.data?.inspected;
    if (!m) return;
    try {
      this.load(await this.cb.loadModel(m.run));
    } catch (e) {
      this.showMessage("err", `Could not load ${m.id}: ${(e as Error).message}`);
    }
  }

  private renderHead(): void {
    clear(this.headEl);
    const fromInspected = h("button", { class: "rm-btn small", "data-testid": "editor-load-inspected", disabled: !this.data?.inspected }, this.data?.inspected ? `Start from ${this.data.inspected.id}` : "Start from the inspected model");
    fromInspected.addEventListener("click", () => void this.loadInspected());
    const empty = h("button", { class: "rm-btn small", "data-testid": "editor-empty" }, "Start empty");
    empty.addEventListener("click", () => this.startEmpty());
    this.headEl.append(
      h("div", { style: "display:flex;gap:6px;align-items:center;flex-wrap:wrap" }, fromInspected, empty),
      this.spec
        ? h("div", { class: "rm-help" }, this.parent ? `Editing a copy of ${this.parent}. ` : "New model. ", `Input ${formatShape(this.spec.input.shape)}, ${this.spec.input.num_classes} classes; the classifier (flatten + dense) is implicit.`)
        : h("div", { class: "rm-help" }, "Start from the inspected model or from empty, then drag layer types from the palette into the sequence."),
    );
  }

  private render(): void {
    this.renderHead();
    this.renderInit();
    clear(this.listEl);
    this.rows = [];
    this.enqueueBtn.title = this.spec ? "" : "Start empty or from a model first";
    if (!this.spec) {
      this.glyphEl.style.display = "none";
      this.enqueueBtn.disabled = true;
      return;
    }
    this.glyphEl.style.display = "";
    const layers = this.spec.layers;
    this.listEl.appendChild(this.slot(0));
    layers.forEach((layer, i) => {
      this.listEl.appendChild(this.layerRow(layer, i));
      this.listEl.appendChild(this.slot(i + 1));
    });
    if (!layers.length) this.listEl.appendChild(h("div", { class: "rm-help" }, "No layers: the model is just the classifier. Drag a layer type onto the slot above, or click a palette chip."));
    this.listEl.appendChild(
      h("div", { class: "rm-editor-layer", style: "background:#fafafa" }, h("span", { class: "rm-muted" }, ""), h("i", { class: "rm-swatch sq", style: `background:${layerColor("classifier")}` }), h("span", { class: "rm-muted" }, `classifier → ${this.spec.input.num_classes} classes (implicit)`), h("span", { class: "shape", "data-testid": "editor-classifier-params" })),
    );
    this.applyValidation();
  }

  /** The weights choice: only for a model with a parent; "parent" needs a finished parent. */
  private renderInit(): void {
    this.initWrap.style.display = this.spec && this.parent ? "" : "none";
    const usable = parentFinished(this.parentState);
    const parentOption = this.initSelect.querySelector<HTMLOptionElement>('option[value="parent"]');
    if (parentOption) {
      parentOption.disabled = !usable;
      parentOption.textContent = usable ? INIT_LABELS.parent : `${INIT_LABELS.parent} (${this.parent ?? "the parent"} has not finished)`;
    }
    if (!usable) this.initSelect.value = "scratch";
  }

  private slot(pos: number): HTMLElement {
    const el = h("div", { class: `rm-slot ${this.activeSlot === pos ? "active" : ""}`, "data-slot": pos, "data-testid": "editor-slot", title: "Drop a layer here, or click to insert palette clicks here" });
    el.addEventListener("click", () => {
      this.activeSlot = this.activeSlot === pos ? null : pos;
      this.render();
    });
    el.addEventListener("dragover", (e) => {
      e.preventDefault();
      el.classList.add("drop");
    });
    el.addEventListener("dragleave", () => el.classList.remove("drop"));
    el.addEventListener("drop", (e) => {
      e.preventDefault();
      el.classList.remove("drop");
      const t = e.dataTransfer?.getData("text/x-remap-layer") || e.dataTransfer?.getData("text/plain");
      if (t && knowsType(this.schema, t)) this.insert(t, pos);
    });
    return el;
  }

  private layerRow(layer: Layer, i: number): HTMLElement {
    const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
    const fields = h("div", { class: "fields" });
    const known = this.schema?.fields[layer.type];
    if (known) {
      for (const f of known) {
        let input: HTMLInputElement | HTMLSelectElement;
        const current = layer[f.name] === undefined ? "" : String(layer[f.name]);
        if (f.kind === "bool") {
          const box = h("input", { type: "checkbox", "data-field": f.name, title: `${f.name} (${defaultText(f)})` }) as HTMLInputElement;
          box.checked = typeof layer[f.name] === "boolean" ? (layer[f.name] as boolean) : f.default !== false;
          box.addEventListener("change", () => this.setValue(i, f.name, box.checked === f.default ? undefined : box.checked));
          inputs.set(f.name, box);
          fields.appendChild(h("label", {}, box, fieldLabel(f.name)));
          continue;
        }
        if (f.kind === "padding") {
          fields.appendChild(this.paddingInput(i, layer, f, inputs));
          continue;
        }
        if (f.kind === "choice") {
          input = h("select", { "data-field": f.name });
          if (!f.required) input.appendChild(h("option", { value: "" }, `(${defaultText(f)})`));
          const choices = [...(f.choices ?? [])];
          if (current !== "" && !choices.includes(current)) choices.push(current); // show what the spec holds, the server flags it
          for (const c of choices) input.appendChild(h("option", { value: c }, c));
          input.value = current;
        } else {
          input = h("input", { type: "number", "data-field": f.name, step: fieldStep(f), min: f.min, max: f.max !== null && f.max_inclusive ? f.max : null, placeholder: placeholderText(f), title: f.required ? f.name : `${f.name} (${defaultText(f)})` });
          input.value = current;
        }
        input.addEventListener("input", () => this.setValue(i, f.name, parseFieldInput(f, input.value), 250));
        inputs.set(f.name, input);
        fields.appendChild(h("label", {}, fieldLabel(f.name), input));
      }
      if (!known.length) fields.appendChild(h("span", { class: "rm-muted rm-small" }, "no settings"));
      for (const k of Object.keys(layer)) {
        if (k !== "type" && k !== "inputs" && !known.some((f) => f.name === k)) fields.appendChild(h("span", { class: "rm-muted rm-small", title: "not a field of this layer type" }, `${k}=${layer[k]}`));
      }
    } else {
      fields.appendChild(h("span", { class: "rm-muted rm-small" }, JSON.stringify(layer)));
    }
    const up = h("button", { class: "rm-btn small", title: "Move up", disabled: i === 0 }, "↑");
    up.addEventListener("click", () => this.move(i, -1));
    const down = h("button", { class: "rm-btn small", title: "Move down", disabled: i === (this.spec?.layers.length ?? 0) - 1 }, "↓");
    down.addEventListener("click", () => this.move(i, 1));
    const rm = h("button", { class: "rm-btn small", title: "Remove this layer", "data-testid": "editor-remove" }, "✕");
    rm.addEventListener("click", () => this.remove(i));
    const shape = h("span", { class: "shape" });
    const err = h("div", { class: "lerr", "data-testid": "editor-error", style: "display:none" });
    const links = this.schema?.inputs ? this.linksControl(layer, i) : null;
    const fn = typeof layer["fn"] === "string" ? (layer["fn"] as string) : undefined;
    const row = h(
      "div",
      { class: "rm-editor-layer", "data-testid": "editor-layer", "data-index": i, "data-type": layer.type },
      h("span", { class: "rm-muted rm-small" }, `#${i}`),
      h("i", { class: "rm-swatch sq", style: `background:${layerColor(layer.type, fn)}` }),
      h("div", {}, h("b", { style: "font-weight:500;margin-right:6px" }, TYPE_LABELS[layer.type] ?? layer.type), fields),
      h("div", { style: "display:flex;flex-direction:column;align-items:flex-end;gap:2px" }, shape, h("div", { style: "display:flex;gap:2px" }, up, down, rm)),
      links,
      err,
    );
    this.rows.push({ row, shape, err, inputs, links });
    return row;
  }

  /** conv2d padding (schema 2): "valid", "same" or a whole number of pixels per side. */
  private paddingInput(i: number, layer: Layer, f: SchemaField, inputs: RowRefs["inputs"]): HTMLElement {
    const value = layer[f.name];
    const sel = h("select", { "data-field": f.name, title: `${f.name}: ${(f.choices ?? []).join(", ")} or pixels per side (${defaultText(f)})` }) as HTMLSelectElement;
    if (!f.required) sel.appendChild(h("option", { value: "" }, `(${defaultText(f)})`));
    const choices = [...(f.choices ?? [])];
    if (typeof value === "string" && value !== "" && !choices.includes(value)) choices.push(value);
    for (const c of choices) sel.appendChild(h("option", { value: c }, c));
    sel.appendChild(h("option", { value: "#" }, "pixels…"));
    const px = h("input", { type: "number", "data-field": `${f.name}-pixels`, step: 1, min: f.min ?? 0, max: f.max, placeholder: "px", title: "zero padding on every side (pixels)" }) as HTMLInputElement;
    const numeric = typeof value === "number";
    sel.value = numeric ? "#" : value === undefined ? "" : String(value);
    px.value = numeric ? String(value) : "";
    px.style.display = numeric ? "" : "none";
    sel.addEventListener("change", () => {
      if (sel.value === "#") {
        px.style.display = "";
        if (px.value === "") px.value = String(Math.max(f.min ?? 0, 1));
        this.setValue(i, f.name, parseFieldInput(f, px.value));
        px.focus();
      } else {
        px.style.display = "none";
        this.setValue(i, f.name, sel.value === "" ? undefined : sel.value);
      }
    });
    px.addEventListener("input", () => this.setValue(i, f.name, parseFieldInput(f, px.value), 250));
    inputs.set(f.name, sel);
    inputs.set(`${f.name}-pixels`, px);
    return h("label", {}, fieldLabel(f.name), sel, px);
  }

  /**
   * What layer `i` reads, as chips (✕ removes a connection; a layer keeps one), a
   * "+ from…" select that adds a connection from an earlier layer or the network
   * input, and a "skip from…" select that inserts a merge after this layer summing
   * it with an earlier one (a residual connection).
   */
  private linksControl(layer: Layer, i: number): HTMLElement {
    const current = inputsOf(layer, i);
    const el = h("div", { class: "rm-links-row", "data-testid": "editor-inputs", "data-inputs": current.join(",") }, h("span", { class: "rm-muted" }, "reads"));
    for (const k of current) {
      const chip = h("span", { class: `rm-in-chip ${readsPrevious(current, i) ? "implicit" : ""}`, "data-testid": "editor-input", "data-input": k, title: k === i - 1 ? "the previous layer" : k === -1 ? "the network input" : `layer ${k}` }, inputLabel(k));
      if (current.length > 1) {
        const x = h("button", { class: "rm-x", title: `Remove the connection from ${inputLabel(k)}`, "data-testid": "editor-input-remove" }, "✕");
        x.addEventListener("click", () => this.edit((L) => removeInput(L, i, k)));
        chip.appendChild(x);
      }
      el.appendChild(chip);
    }
    const choices = this.spec ? inputChoices(this.spec.layers, i) : [];
    const merges = this.schema?.merge_types ?? MERGE_TYPES;
    const from = h("select", { "data-testid": "editor-add-input", title: merges.includes(layer.type) ? "Add an input to this merge" : `Only ${merges.join(" and ")} take several inputs; use "skip from…" for a residual connection`, disabled: !choices.length }, h("option", { value: "" }, "+ from…"));
    for (const k of choices) from.appendChild(h("option", { value: String(k) }, k === -1 ? "network input" : `#${k} ${this.spec?.layers[k]?.type ?? ""}`));
    from.addEventListener("change", () => {
      if (from.value !== "") this.edit((L) => addInput(L, i, Number(from.value)));
    });
    el.appendChild(from);
    const skipFrom = [-1, ...Array.from({ length: i }, (_, k) => k)];
    const merge = merges.includes("add") ? "add" : merges[0];
    if (merge) {
      const skip = h("select", { "data-testid": "editor-add-skip", title: `Insert an ${merge} after this layer that sums it with an earlier layer (a skip connection)` }, h("option", { value: "" }, "skip from…"));
      for (const k of skipFrom) skip.appendChild(h("option", { value: String(k) }, k === -1 ? "network input" : `#${k} ${this.spec?.layers[k]?.type ?? ""}`));
      skip.addEventListener("change", () => {
        if (skip.value !== "") this.edit((L) => addSkip(L, i, Number(skip.value), merge));
      });
      el.appendChild(skip);
    }
    return el;
  }

  /** Replace the layers with an edit of them, re-render and validate. */
  private edit(f: (layers: Layer[]) => Layer[]): void {
    if (!this.spec) return;
    this.spec = { ...this.spec, layers: f(this.spec.layers) };
    this.render();
    this.scheduleValidate(0);
  }

  /** Set (undefined: clear, so the server's default applies) one field of layer i. */
  private setValue(i: number, name: string, value: number | string | boolean | undefined, delay = 0): void {
    if (!this.spec) return;
    const layer = this.spec.layers[i];
    if (value === undefined) delete layer[name];
    else layer[name] = value;
    this.scheduleValidate(delay);
  }

  private insert(type: string, pos: number): void {
    if (!this.spec) {
      this.showMessage("warn", "Start from a model or from empty first.");
      return;
    }
    if (!this.schema) return;
    this.spec.layers = insertLayer(this.spec.layers, pos, newLayer(this.schema, type));
    this.activeSlot = this.activeSlot === null ? null : pos + 1;
    this.render();
    this.scheduleValidate(0);
  }

  private remove(i: number): void {
    if (!this.spec) return;
    this.spec.layers = removeLayer(this.spec.layers, i);
    this.activeSlot = null;
    this.render();
    this.scheduleValidate(0);
  }

  private move(i: number, by: number): void {
    if (!this.spec) return;
    const j = i + by;
    if (j < 0 || j >= this.spec.layers.length) return;
    this.spec.layers = moveLayer(this.spec.layers, i, j);
    this.render();
    this.scheduleValidate(0);
  }

  private scheduleValidate(delay: number): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.validate(), delay);
  }

  private async validate(): Promise<void> {
    if (!this.spec) return;
    const seq = ++this.validating;
    const req: ValidateRequest = { spec: withSchemaVersion(this.spec) };
    if (this.data?.budget) req.max_params = this.data.budget;
    this.enqueueBtn.disabled = true;
    try {
      const res = await this.cb.validate(req);
      if (seq !== this.validating) return; // a newer edit is being validated
      this.validation = res;
      this.applyValidation();
    } catch (e) {
      if (seq !== this.validating) return;
      this.validation = null;
      this.applyValidation();
      this.showMessage("err", `Validation failed: ${(e as Error).message}`);
    }
  }

  private applyValidation(): void {
    const v = this.validation;
    clear(this.specErrEl);
    clear(this.totalsEl);
    clear(this.glyphEl);
    if (!this.spec) return;
    const byIndex = new Map<number, string[]>();
    const badFields = new Map<number, Set<string>>();
    if (v) {
      for (const e of v.errors) {
        if (e.index === null || e.index >= this.rows.length) {
          this.specErrEl.appendChild(h("div", { class: "rm-banner err", "data-testid": "editor-spec-error" }, e.text || e.message));
          continue;
        }
        if (!byIndex.has(e.index)) byIndex.set(e.index, []);
        byIndex.get(e.index)!.push(e.message);
        if (e.field) {
          if (!badFields.has(e.index)) badFields.set(e.index, new Set());
          badFields.get(e.index)!.add(e.field);
        }
      }
    }
    this.rows.forEach((r, i) => {
      const info = v?.layers.find((l) => l.index === i);
      r.shape.textContent = !info ? "" : info.output_shape === null ? "→ ?" : `→ ${formatShape(info.output_shape)} · ${info.params === null ? "?" : formatParams(info.params)} params`;
      const errs = byIndex.get(i);
      r.row.classList.toggle("err", !!errs);
      r.err.style.display = errs ? "" : "none";
      r.err.textContent = errs ? errs.join("; ") : "";
      for (const [name, input] of r.inputs) input.style.borderColor = badFields.get(i)?.has(name.replace(/-pixels$/, "")) ? "#c62828" : "";
      r.links?.classList.toggle("bad", !!badFields.get(i)?.has("inputs"));
    });
    const clsEl = this.listEl.querySelector('[data-testid="editor-classifier-params"]');
    if (clsEl) clsEl.textContent = v?.classifier_params != null ? `${formatParams(v.classifier_params)} params` : "";
    if (!v) {
      this.enqueueBtn.disabled = true;
      return;
    }
    this.glyphEl.appendChild(glyphSvg(glyphFromValidation(v, this.spec), { height: 30, paramRow: 7, blockWidth: 12, thinWidth: 5, gap: 2 }));
    const budget = v.max_params ?? this.data?.budget ?? null;
    const total = v.total_params;
    const over = budget !== null && total !== null && total > budget;
    const frac = budget && total !== null ? Math.min(1, total / budget) : 0;
    this.totalsEl.append(
      h("h3", {}, "Size"),
      h("div", {}, h("b", {}, total === null ? "?" : total.toLocaleString()), " parameters", budget !== null ? ` of a ${formatParams(budget)} budget` : "", ` · depth ${v.depth}`),
      budget !== null ? h("div", { class: `rm-budget ${over ? "over" : ""}`, "data-testid": "editor-budget" }, h("div", { style: `width:${(frac * 100).toFixed(1)}%` })) : h("span"),
      h("div", { class: v.valid ? "rm-pos" : "rm-neg", "data-testid": "editor-validity" }, v.valid ? "✓ valid" : `✗ ${v.errors.length} problem${v.errors.length === 1 ? "" : "s"}`),
    );
    const onInspect = (id: string) => this.cb.onInspect?.(id);
    let saidSame = false; // the change list already says "same model as the parent"
    if (this.parent && this.parentSpec) {
      const changes = handcraftedChanges(this.parentSpec, this.spec);
      saidSame = !changes.length;
      const parent = resolveDuplicate(this.parent, this.data?.models ?? []);
      this.totalsEl.appendChild(
        changes.length
          ? h("div", { class: "rm-help", "data-testid": "editor-changes", "data-count": changes.length }, `Changes vs ${this.parent}: `, changes.join("; "))
          : h("div", { class: "rm-banner warn", "data-testid": "editor-changes", "data-count": 0 }, "No change from the parent: this is the same model as ", parent ? duplicateLink(parent, onInspect) : this.parent, ". Change a layer to make a new model."),
      );
    }
    // The server's canonical comparison: also a changed spec whose changes do nothing (a relu
    // right after a relu), even when the model it equals is the parent.
    const dupId = duplicateId(v.duplicate_of);
    const dup = resolveDuplicate(v.duplicate_of, this.data?.models ?? []);
    if (dupId && !(saidSame && (dup?.id ?? dupId) === this.parent))
      this.totalsEl.appendChild(
        h("div", { class: "rm-banner warn", "data-testid": "editor-duplicate", "data-duplicate-of": dup?.id ?? dupId }, "Same model as the existing ", duplicateRef(dupId, this.data?.models ?? [], onInspect), " (equal once layers that do nothing are removed), so training it would repeat that model."),
      );
    this.enqueueBtn.disabled = !v.valid;
  }

  private async enqueue(): Promise<void> {
    if (!this.spec || !this.validation?.valid) return;
    const ep = intField("Epochs", this.epochs.value, 1, 1000, null);
    if (!ep.ok) {
      this.showMessage("err", ep.error);
      return;
    }
    const req: EnqueueRequest = {
      items: [handcraftedItem(JSON.parse(JSON.stringify(withSchemaVersion(this.spec))) as Spec, this.parent, this.initSelect.value as InitMode, this.parentState)],
    };
    if (this.parent && this.parentSpec) req.items[0].changes = handcraftedChanges(this.parentSpec, this.spec);
    if (ep.value !== null) req.epochs = ep.value;
    if (this.data?.experiment) req.experiment = this.data.experiment;
    req.client_key = this.history.key(req); // the same body -> the same key -> the same ids
    this.enqueueBtn.disabled = true;
    try {
      const res = await this.cb.enqueue(req);
      const noted = this.history.note(res.request_ids);
      this.showMessage(noted.fresh.length ? "ok" : "warn", enqueueMessage(res.request_ids, noted));
      this.messageEl.firstElementChild?.setAttribute("data-request-ids", res.request_ids.join(","));
      const note = duplicatesNote(res.duplicates, "enqueue", this.data?.models ?? [], (id) => this.cb.onInspect?.(id), "editor-enqueue-duplicates");
      if (note) this.messageEl.appendChild(note);
      if (noted.fresh.length) this.cb.onEnqueued(res.request_ids);
    } catch (e) {
      const msg = `Enqueue failed: ${explainServerError((e as Error).message)}`;
      const dup = errorDuplicate(msg, e instanceof ApiError ? e.duplicateOf : null, this.data?.models ?? []);
      clear(this.messageEl);
      this.messageEl.appendChild(h("div", { class: "rm-banner err", "data-testid": "editor-enqueue-error" }, ...withDuplicateLink(msg, dup, (id) => this.cb.onInspect?.(id))));
    } finally {
      this.enqueueBtn.disabled = !this.spec || !this.validation?.valid;
    }
  }

  private showMessage(kind: "ok" | "warn" | "err", text: string): void {
    clear(this.messageEl);
    this.messageEl.appendChild(h("div", { class: `rm-banner ${kind}` }, text));
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    this.root.remove();
  }
}
