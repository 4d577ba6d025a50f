// The generate panel: ablations or variations around the inspected model (or
// around every model of a lasso selection), under constraints. Candidates are
// previewed with glyphs and parameter counts (over-budget or invalid ones marked
// with the reason); the user ticks which to train and enqueues them.
//
// Issue 10: each candidate shows the surrogate's predicted accuracy (a bar with its
// uncertainty, mean ± std), the list sorts by it or by expected improvement, "Suggest"
// asks the route for the k best by expected improvement among many generated ones
// (marked "suggested" and enqueued with `suggested: true`), and the children start
// from the parent's weights or from scratch (`init`).

import type { Candidate, CandidateSort, ChangeType, EnqueueRequest, EnqueueResponse, GenerateKind, GenerateOptions, GenerateRequest, GenerateResponse, GlyphLayer, InitMode, ModelSummary, Origin, State, SurrogateInfo } from "../types";
import { glyphSvg } from "../charts/glyph";
import { h, s, clear } from "../lib/dom";
import { cleanPrediction, formatEi, formatPrediction, ORDER_LABELS, predictionBar, predictionDomain, sortCandidates, surrogateNote, type CandidateOrder } from "../lib/predict";
import { candidateItems, defaultEpochsNote, defaultInit, EPOCHS_TITLE, INIT_LABELS, parentFinished } from "../lib/inherit";
import { formatParams } from "../lib/format";
import { TYPE_LABELS, layerColor } from "../lib/layers";
import { mulberry32 } from "../lib/random";
import { EnqueueHistory, enqueueMessage } from "../lib/enqueue";
import { explainServerError, intField, Parsed } from "../lib/form";
import { MAX_BUDGET } from "../lib/budget";
import { candidateDuplicate, errorDuplicate } from "../lib/duplicate";
import { ApiError } from "../client";
import { duplicatesNote, withDuplicateLink } from "./duplicate";

export interface GenerateData {
  inspected: ModelSummary | null;
  selected: ModelSummary[];
  budget: number | null;
  experiment: string | null;
  /** Every model of the experiment (to name and link the model a duplicate duplicates). */
  models?: ModelSummary[];
}

export interface GenerateCallbacks {
  generate(req: GenerateRequest): Promise<GenerateResponse>;
  enqueue(req: EnqueueRequest): Promise<EnqueueResponse>;
  onEnqueued(ids: string[]): void;
  /** Inspect a model (a duplicate's existing model). */
  onInspect?(id: string): void;
}

/**
 * The note when the panel's target (the parents) changes under it, e.g. a click on the map
 * while the panel is open (issue 11: never silently). Null when nothing changed or there
 * was no target before.
 */
export function targetChangeNote(before: string[], now: string[], candidatesShown: number): string | null {
  if (!before.length || !now.length || before.join(",") === now.join(",")) return null;
  const name = (ids: string[]) => (ids.length === 1 ? ids[0] : `${ids.length} models (${ids.slice(0, 3).join(", ")}${ids.length > 3 ? "…" : ""})`);
  const was = candidatesShown ? ` The ${candidatesShown} candidate${candidatesShown === 1 ? "" : "s"} below were made around ${name(before)}: preview again for the new target.` : "";
  return `Target changed to ${name(now)} (was ${name(before)}).${was}`;
}

/** Every variation change type, in the form's order. */
export const CHANGE_TYPES: ChangeType[] = ["replace", "reparameterise", "remove", "insert", "add_skip", "remove_skip"];
/** Ticked at first: the server's default (the skip changes are asked for explicitly). */
export const DEFAULT_CHANGE_TYPES: ChangeType[] = ["replace", "reparameterise", "remove", "insert"];
const CHANGE_LABELS: Partial<Record<ChangeType, string>> = { add_skip: "add skip connection", remove_skip: "remove skip connection" };

/** The generate options with the ablation's `blocks` (remove whole residual blocks). */

/** Does any of these models have an `add` layer (a skip connection, a residual block)? */
export function hasAddLayer(models: { glyph: GlyphLayer[] }[]): boolean {
  return models.some((m) => m.glyph.some((g) => g.type === "add"));
}

/** What the panel holds when the user asks for a preview. */
export interface GenerateChoice {
  parents: string[]; // run names
  kind: GenerateKind;
  layers: { all: number[]; ticked: number[] } | null; // null: no layer choice (several parents)
  form: Parsed<GenerateFormValues>;
  changeTypes: ChangeType[]; // the ticked ones that apply to the parents
  blocks: boolean; // "whole residual blocks" ticked and available
  types: { all: string[]; ticked: string[] }; // the allowed-layers boxes
  /** Ask the server to order the candidates (the panel also orders them itself). */
  sort?: CandidateSort | null;
  /** "Suggest": the k best by expected improvement among `count` generated (variations). */
  suggest?: SuggestValues | null;
}

/** "Suggest" picks k (1..MAX_SUGGEST) of `count` generated variations (up to MAX_CHILDREN). */
export interface SuggestValues {
  k: number;
  count: number;
}
export const MAX_SUGGEST = 20;
export const SUGGEST_K = 3;
export const SUGGEST_POOL = 50;

/** The body of POST generate, or why it cannot be sent (in the words of the form). */
export function buildGenerateRequest(ch: GenerateChoice): GenerateRequest | string {
  if (!ch.parents.length) return "Choose a parent first: click a model on the map.";
  const o: GenerateOptions = {};
  const c: NonNullable<GenerateRequest["constraints"]> = {};
  const req: GenerateRequest = { parents: [...ch.parents], kind: ch.kind, options: o, constraints: c };
  if (ch.layers && ch.layers.all.length) {
    if (!ch.layers.ticked.length) return "Layers to touch: tick at least one.";
    if (ch.layers.ticked.length < ch.layers.all.length) o.layers = [...ch.layers.ticked];
  }
  if (!ch.form.ok) return ch.form.error;
  const f = ch.form.value;
  if (ch.kind === "variation") {
    o.count = f.count;
    o.max_changes = f.maxChanges;
    const ct = CHANGE_TYPES.filter((t) => ch.changeTypes.includes(t));
    if (!ct.length) return "Change types: tick at least one.";
    o.change_types = ct;
    o.seed = f.seed;
    if (ch.suggest) o.count = ch.suggest.count; // the pool the k are picked from
  } else if (ch.blocks) {
    o.blocks = true;
  }
  if (ch.sort) o.sort = ch.sort;
  if (ch.suggest) o.suggest = ch.suggest.k;
  if (f.minParams !== null) c.min_params = f.minParams;
  if (f.maxParams !== null) c.max_params = f.maxParams;
  if (f.maxDepth !== null) c.max_depth = f.maxDepth;
  if (ch.types.ticked.length < ch.types.all.length) c.allowed_types = ch.types.all.filter((t) => ch.types.ticked.includes(t));
  return req;
}

/** The form's fields as typed. */
export interface GenerateFormRaw {
  count: string;
  maxChanges: string;
  seed: string;
  minParams: string;
  maxParams: string;
  maxDepth: string;
  epochs: string;
}

export interface GenerateFormValues {
  count: number;
  maxChanges: number;
  seed: number;
  minParams: number | null;
  maxParams: number | null;
  maxDepth: number | null;
  epochs: number | null;
}

/** The server's limits for options.count and options.max_changes. */
export const MAX_CHILDREN = 100;
export const MAX_CHANGES = 10;

/** Check the form before POST, with the field names the user sees. */
export function parseGenerateForm(raw: GenerateFormRaw): Parsed<GenerateFormValues> {
  const fields = {
    count: intField("Children", raw.count, 1, MAX_CHILDREN, 5),
    maxChanges: intField("Changes per child", raw.maxChanges, 1, MAX_CHANGES, 3),
    seed: intField("Seed", raw.seed, 0, Number.MAX_SAFE_INTEGER, 0),
    minParams: intField("Parameters (min)", raw.minParams, 0, MAX_BUDGET, null),
    maxParams: intField("Parameters (max)", raw.maxParams, 1, MAX_BUDGET, null),
    maxDepth: intField("Max depth", raw.maxDepth, 0, null, null),
    epochs: intField("Epochs", raw.epochs, 1, 1000, null),
  };
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (!v.ok) return v;
    out[k] = v.value;
  }
  const values = out as unknown as GenerateFormValues;
  if (values.minParams !== null && values.maxParams !== null && values.minParams > values.maxParams)
    return { ok: false, error: `Parameters: the minimum (${values.minParams.toLocaleString("en-US")}) is above the maximum (${values.maxParams.toLocaleString("en-US")}).` };
  return { ok: true, value: values };
}

/** Check the Suggest fields: k best (1..20, default 3) of a pool (1..100, default 50; variations only). */
export function parseSuggest(kRaw: string, poolRaw: string, variation: boolean): Parsed<SuggestValues> {
  const k = intField("Suggest", kRaw, 1, MAX_SUGGEST, SUGGEST_K);
  if (!k.ok) return k;
  const pool = intField("Suggest: generated", variation ? poolRaw : "", 1, MAX_CHILDREN, SUGGEST_POOL);
  if (!pool.ok) return pool;
  const value = { k: k.value!, count: pool.value! };
  if (variation && value.k > value.count) return { ok: false, error: `Suggest: the ${value.k} best cannot be picked from ${value.count} generated; generate at least ${value.k}.` };
  return { ok: true, value };
}

/** Why a candidate cannot or should not be trained (null = fine). */
export function candidateProblem(c: Candidate, budget: number | null, minParams: number | null): string | null {
  if (!c.valid) return c.reason ?? "invalid";
  if (c.reason) return c.reason;
  if (budget !== null && c.params !== null && c.params > budget) return `over budget: ${formatParams(c.params)} > ${formatParams(budget)} parameters`;
  if (minParams !== null && c.params !== null && c.params < minParams) return `under the minimum: ${formatParams(c.params)} < ${formatParams(minParams)} parameters`;
  return null;
}

export class GenerateView {
  private readonly root: HTMLElement;
  private readonly parentsEl: HTMLElement;
  private readonly layersEl: HTMLElement;
  private readonly variationRows: HTMLElement[] = [];
  private readonly blocksRows: HTMLElement[] = []; // ablation of a parent with an add only
  private readonly resultEl: HTMLElement;
  private readonly messageEl: HTMLElement;
  private kind: GenerateKind = "ablation";
  private source: "inspected" | "selection" = "inspected";
  private data: GenerateData | null = null;
  private candidates: Candidate[] = [];
  private ticked = new Set<string>();
  private ticksTouched = false; // the user changed the default ticks
  private readonly history = new EnqueueHistory();
  private readonly rng = mulberry32(Date.now() & 0xffffffff);
  private parentKey = "";
  /** The ids of the parents the panel shows (to tell the user when they change). */
  private targetIds: string[] = [];
  private readonly targetNote: HTMLElement;
  private busy = false;
  private lastMax: number | null | undefined = undefined;
  private previewBudget: number | null = null; // the maximum the candidates were checked against
  /** The user typed a maximum: it no longer follows the map's budget. */
  private maxTouched = false;
  private readonly maxNote: HTMLElement;

  private readonly kindBtns = new Map<GenerateKind, HTMLButtonElement>();
  private readonly count: HTMLInputElement;
  private readonly maxChanges: HTMLInputElement;
  private readonly seed: HTMLInputElement;
  private readonly changeBoxes = new Map<ChangeType, HTMLInputElement>();
  private readonly removeSkipHint: HTMLElement;
  private readonly blocksBox: HTMLInputElement;
  private hasAdd = false; // a parent has an add layer
  private readonly minParams: HTMLInputElement;
  private readonly maxParams: HTMLInputElement;
  private readonly maxDepth: HTMLInputElement;
  private readonly typeBoxes = new Map<string, HTMLInputElement>();
  private readonly typesEl: HTMLElement;
  private readonly epochs: HTMLInputElement;
  private readonly previewBtn: HTMLButtonElement;
  private layerBoxes: HTMLInputElement[] = [];
  // issue 10: predictions, suggest, weight inheritance
  private order: CandidateOrder = "generated";
  private surrogate: SurrogateInfo | null = null;
  private suggestedRun = false; // the candidates shown came from "Suggest"
  private readonly suggestBtn: HTMLButtonElement;
  private readonly suggestK: HTMLInputElement;
  private readonly suggestPool: HTMLInputElement;
  private readonly suggestPoolWrap: HTMLElement;
  private readonly initSelect: HTMLSelectElement;
  private readonly initHint: HTMLElement;
  private readonly epochsHint: HTMLElement;
  private initTouched = false; // the user chose; the default no longer follows the parents

  constructor(container: HTMLElement, private readonly cb: GenerateCallbacks) {
    this.root = h("div", { "data-testid": "generate" });
    container.appendChild(this.root);
    this.parentsEl = h("div", { class: "rm-section", "data-testid": "generate-parents" });
    this.root.appendChild(this.parentsEl);
    this.targetNote = h("div", { "data-testid": "generate-target-note" });
    this.root.appendChild(this.targetNote);

    const form = h("div", { "data-testid": "generate-form" });
    this.root.appendChild(form);
    const seg = h("div", { class: "rm-seg" });
    for (const [k, label] of [
      ["ablation", "Ablation"],
      ["variation", "Variation"],
    ] as const) {
      const b = h("button", { "data-kind": k, "data-testid": `generate-kind-${k}` }, label);
      b.addEventListener("click", () => this.setKind(k));
      this.kindBtns.set(k, b);
      seg.appendChild(b);
    }
    const num = (attrs: Record<string, string | number>) => h("input", { type: "number", ...attrs }) as HTMLInputElement;
    this.count = num({ min: 1, max: MAX_CHILDREN, step: 1, value: 5, "data-testid": "generate-count" });
    this.maxChanges = num({ min: 1, max: MAX_CHANGES, step: 1, value: 3, "data-testid": "generate-max-changes" });
    this.seed = num({ min: 0, step: 1, value: 0, "data-testid": "generate-seed" });
    const reseed = h("button", { class: "rm-btn small", title: "New random seed" }, "↻");
    reseed.addEventListener("click", () => (this.seed.value = String(Math.floor(this.rng() * 1e6))));
    const changes = h("div", { class: "rm-checks" });
    this.removeSkipHint = h("span", { class: "rm-muted rm-small", "data-testid": "generate-remove-skip-hint" });
    for (const c of CHANGE_TYPES) {
      const box = h("input", { type: "checkbox", checked: DEFAULT_CHANGE_TYPES.includes(c), value: c, "data-testid": `generate-change-${c}` }) as HTMLInputElement;
      this.changeBoxes.set(c, box);
      changes.appendChild(h("label", { "data-change": c }, box, CHANGE_LABELS[c] ?? c, c === "remove_skip" ? this.removeSkipHint : null));
    }
    this.blocksBox = h("input", { type: "checkbox", "data-testid": "generate-blocks" }) as HTMLInputElement;
    const blocks = h(
      "span",
      {},
      h("label", { title: "One child per residual block (a block ends in an add): its layers are removed and the layers after it read the block's input" }, this.blocksBox, "whole residual blocks"),
      " ",
      h("span", { class: "rm-muted rm-small" }, "instead of one layer at a time"),
    );
    this.layersEl = h("div", { class: "rm-checks", "data-testid": "generate-layers" });
    this.minParams = num({ min: 0, max: MAX_BUDGET, step: 1, placeholder: "none", "data-testid": "generate-min-params", style: "width:90px" });
    this.maxParams = num({ min: 1, max: MAX_BUDGET, step: 1, placeholder: "none", "data-testid": "generate-max-params", style: "width:90px" });
    // The maximum starts as the map's budget and follows it until the user types one here;
    // typing here does not move the map's budget.
    this.maxNote = h("span", { class: "rm-muted rm-small", "data-testid": "generate-max-note" });
    this.maxParams.addEventListener("input", () => {
      this.maxTouched = true;
      this.renderMaxNote();
    });
    this.maxParams.addEventListener("change", () => this.maxChanged());
    this.minParams.addEventListener("change", () => this.maxChanged(true));
    this.maxDepth = num({ min: 0, step: 1, placeholder: "none", "data-testid": "generate-max-depth" });
    const types = h("div", { class: "rm-checks", "data-testid": "generate-allowed-types" }, h("span", { class: "rm-muted rm-small" }, "all (loading the layer types…)"));
    this.typesEl = types;
    this.epochs = num({ min: 1, max: 1000, placeholder: "default", "data-testid": "generate-epochs", title: EPOCHS_TITLE });
    this.epochs.addEventListener("input", () => this.renderInitHint());
    this.epochsHint = h("span", { class: "rm-muted rm-small", "data-testid": "generate-epochs-hint" });
    this.initSelect = h("select", { "data-testid": "generate-init", title: "Where the children's weights start: the parent's trained weights (layers the change left alone or whose parameter shapes it kept), or a fresh initialisation" }) as HTMLSelectElement;
    for (const m of ["parent", "scratch"] as const) this.initSelect.appendChild(h("option", { value: m }, INIT_LABELS[m]));
    this.initSelect.addEventListener("change", () => {
      this.initTouched = true;
      this.renderInitHint();
    });
    this.initHint = h("span", { class: "rm-muted rm-small", "data-testid": "generate-init-hint" });

    const row = (label: string, el: Node, variationOnly = false, blocksOnly = false) => {
      const l = h("label", {}, label);
      const wrap = h("div", {}, el);
      if (variationOnly) this.variationRows.push(l, wrap);
      if (blocksOnly) this.blocksRows.push(l, wrap);
      return [l, wrap];
    };
    const grid = h("div", { class: "rm-form" });
    const rows = [
      row("Search", seg),
      row("Layers to touch", this.layersEl),
      row("Ablate", blocks, false, true),
      row("Children", this.count, true),
      row("Changes per child", h("span", {}, "1 to ", this.maxChanges), true),
      row("Change types", changes, true),
      row("Seed", h("span", {}, this.seed, " ", reseed), true),
      row("Parameters", h("span", {}, this.minParams, " to ", this.maxParams, " ", this.maxNote)),
      row("Max depth", this.maxDepth),
      row("Allowed layers", types),
      row("Epochs", h("span", {}, this.epochs, " ", this.epochsHint)),
      row("Weights", h("span", {}, this.initSelect, " ", this.initHint)),
    ];
    for (const r of rows) grid.append(...r);
    form.appendChild(grid);
    this.previewBtn = h("button", { class: "rm-btn primary", "data-testid": "generate-preview" }, "Preview candidates");
    this.previewBtn.addEventListener("click", () => void this.preview(false));
    this.suggestK = num({ min: 1, max: MAX_SUGGEST, step: 1, value: SUGGEST_K, "data-testid": "generate-suggest-k", style: "width:48px" });
    this.suggestPool = num({ min: 1, max: MAX_CHILDREN, step: 1, value: SUGGEST_POOL, "data-testid": "generate-suggest-count", style: "width:56px" });
    this.suggestPoolWrap = h("span", {}, " of ", this.suggestPool, " generated");
    this.suggestBtn = h("button", { class: "rm-btn", "data-testid": "generate-suggest", title: "Generate many candidates under the constraints and keep the ones with the highest expected improvement over the best finished model (predicted by a Gaussian process over the finished models)" }, "Suggest") as HTMLButtonElement;
    this.suggestBtn.addEventListener("click", () => void this.preview(true));
    form.appendChild(h("div", { style: "display:flex;gap:8px;align-items:center;margin-bottom:10px;flex-wrap:wrap" }, this.previewBtn, h("span", { class: "rm-suggest" }, this.suggestBtn, " the ", this.suggestK, " best", this.suggestPoolWrap), h("span", { class: "rm-help", style: "margin:0" }, "Nothing is trained until you enqueue.")));
    this.messageEl = h("div", { "data-testid": "generate-message" });
    this.resultEl = h("div", { "data-testid": "candidate-list" });
    this.root.append(this.messageEl, this.resultEl);
    this.setKind("ablation");
    this.renderMaxNote();
  }

  /** The maximum the candidates are checked against: the typed one, else the map's budget. */
  private effectiveMax(): number | null {
    if (!this.maxTouched) return this.data?.budget ?? null;
    const r = intField("", this.maxParams.value, 1, MAX_BUDGET, null);
    return r.ok ? r.value : this.data?.budget ?? null;
  }

  private renderMaxNote(): void {
    clear(this.maxNote);
    if (!this.maxTouched) {
      this.maxNote.appendChild(document.createTextNode("= map budget"));
      this.maxNote.title = "The maximum follows the map's budget until you type one here (typing here does not move the map's budget)";
      return;
    }
    this.maxNote.title = "Your own maximum for this search; the map's budget is unchanged";
    const reset = h("a", { href: "#", "data-testid": "generate-max-reset", title: "Follow the map's budget again" }, "↺ map budget");
    reset.addEventListener("click", (e) => {
      e.preventDefault();
      this.maxTouched = false;
      this.maxParams.value = this.data?.budget == null ? "" : String(this.data.budget);
      this.renderMaxNote();
      this.maxChanged();
    });
    this.maxNote.append(reset);
  }

  /** Re-check the previewed candidates against a changed maximum (or minimum). */
  private maxChanged(force = false): void {
    const eff = this.effectiveMax();
    if (this.candidates.length && (force || eff !== this.lastMax)) {
      if (!this.ticksTouched) this.defaultTicks();
      this.renderCandidates(null);
    }
    this.lastMax = eff;
  }

  private setKind(k: GenerateKind): void {
    this.kind = k;
    for (const [kk, b] of this.kindBtns) b.classList.toggle("on", kk === k);
    for (const el of this.variationRows) el.style.display = k === "variation" ? "" : "none";
    this.suggestPoolWrap.style.display = k === "variation" ? "" : "none";
    this.renderSkipControls();
  }

  /** The skip controls follow the parents: "remove skip" and "whole residual blocks" need an add. */
  private renderSkipControls(): void {
    const parents = this.parents();
    this.hasAdd = hasAddLayer(parents);
    const removeSkip = this.changeBoxes.get("remove_skip")!;
    removeSkip.disabled = !this.hasAdd;
    if (!this.hasAdd) removeSkip.checked = false; // nothing to remove: never sent, so not shown ticked
    const why = !parents.length ? "" : parents.length === 1 ? "(the model has no add layer)" : "(no parent has an add layer)";
    this.removeSkipHint.textContent = this.hasAdd ? "" : ` ${why}`;
    removeSkip.parentElement!.title = this.hasAdd ? "Remove an add: the layers after it read the residual branch, the shortcut is dropped" : `Needs a skip connection (an add layer) ${why}`.trim();
    const showBlocks = this.kind === "ablation" && this.hasAdd;
    for (const el of this.blocksRows) el.style.display = showBlocks ? "" : "none";
    this.blocksBox.disabled = !this.hasAdd;
  }

  private parents(): ModelSummary[] {
    const d = this.data;
    if (!d) return [];
    if (this.source === "selection" && d.selected.length) return d.selected;
    return d.inspected ? [d.inspected] : d.selected.length ? d.selected : [];
  }

  /** The layer types the server knows (GET schema), for the "allowed layers" constraint. */
  setLayerTypes(types: string[]): void {
    const was = new Map([...this.typeBoxes].map(([t, b]) => [t, b.checked]));
    this.typeBoxes.clear();
    clear(this.typesEl);
    for (const t of types) {
      const box = h("input", { type: "checkbox", checked: was.get(t) ?? true, value: t }) as HTMLInputElement;
      this.typeBoxes.set(t, box);
      this.typesEl.appendChild(h("label", {}, box, h("i", { class: "rm-swatch sq", style: `background:${layerColor(t)}` }), TYPE_LABELS[t] ?? t));
    }
  }

  update(d: GenerateData): void {
    this.data = d;
    if (d.selected.length >= 2 && this.source === "inspected" && !d.inspected) this.source = "selection";
    if (!this.maxTouched && document.activeElement !== this.maxParams) this.maxParams.value = d.budget === null ? "" : String(d.budget);
    const parents = this.parents();
    const key = `${this.source}|${parents.map((p) => p.id).join(",")}|${d.inspected?.id}|${d.selected.length}`;
    if (key !== this.parentKey) {
      this.parentKey = key;
      const before = this.targetIds;
      this.targetIds = parents.map((p) => p.id);
      this.renderParents(parents);
      this.renderSkipControls();
      this.showTargetChange(targetChangeNote(before, this.targetIds, this.candidates.length));
    }
    this.previewBtn.disabled = parents.length === 0 || this.busy;
    this.suggestBtn.disabled = parents.length === 0 || this.busy;
    if (!this.initTouched) this.initSelect.value = defaultInit(parents.map((p) => p.status.state));
    this.renderInitHint();
    this.maxChanged();
  }

  /** Say that the target changed (and flash the header); clear the note when `note` is null and the target is empty. */
  private showTargetChange(note: string | null): void {
    if (!note) {
      if (!this.targetIds.length) clear(this.targetNote);
      return;
    }
    clear(this.targetNote);
    const ok = h("button", { class: "rm-btn small", "data-testid": "generate-target-ok", title: "Hide this note" }, "OK");
    ok.addEventListener("click", () => clear(this.targetNote));
    this.targetNote.appendChild(h("div", { class: "rm-banner warn rm-flash", "data-testid": "generate-target-changed", role: "status" }, note, " ", ok));
    // Restart the header's flash animation.
    this.parentsEl.classList.remove("rm-flash");
    void this.parentsEl.offsetWidth;
    this.parentsEl.classList.add("rm-flash");
  }

  /** What "start from the parent's weights" means for the parents at hand. */
  private renderInitHint(): void {
    const parents = this.parents();
    const done = parents.filter((p) => parentFinished(p.status.state)).length;
    let text = "";
    if (parents.length && this.initSelect.value === "parent") {
      if (!done) text = parents.length === 1 ? "(the parent has not finished training: its children start from scratch)" : "(no parent has finished training: the children start from scratch)";
      else if (done < parents.length) text = `(children of the ${parents.length - done} parent${parents.length - done === 1 ? "" : "s"} not finished start from scratch)`;
    }
    this.initHint.textContent = text;
    this.epochsHint.textContent = defaultEpochsNote(this.initSelect.value as InitMode, this.epochs.value.trim() !== "", done > 0);
  }

  /** A parent run's state, for the `init` of its children (undefined: not a parent here). */
  private parentState(run: string): State | undefined {
    return this.parents().find((p) => p.run === run)?.status.state;
  }

  private renderParents(parents: ModelSummary[]): void {
    const d = this.data!;
    clear(this.parentsEl);
    this.parentsEl.appendChild(
      h(
        "h3",
        { "data-testid": "generate-target" },
        parents.length ? "Around · target: " : "Around",
        parents.length ? h("span", { style: "text-transform:none;color:var(--rm-text)" }, parents.length === 1 ? parents[0].id : `${parents.length} models`) : null,
      ),
    );
    if (d.inspected && d.selected.length >= 2) {
      const seg = h("div", { class: "rm-seg", style: "margin-bottom:6px" });
      for (const [src, label] of [
        ["inspected", `Inspected model`],
        ["selection", `${d.selected.length} selected models`],
      ] as const) {
        const b = h("button", { class: this.source === src ? "on" : "", "data-testid": `generate-source-${src}` }, label);
        b.addEventListener("click", () => {
          this.source = src;
          this.parentKey = "";
          this.update(this.data!);
        });
        seg.appendChild(b);
      }
      this.parentsEl.appendChild(seg);
    }
    if (!parents.length) {
      this.parentsEl.appendChild(h("div", { class: "rm-empty", "data-testid": "generate-empty" }, "Inspect a model (click it on the map) or lasso a region to choose the parents of the search."));
      clear(this.layersEl);
      return;
    }
    if (parents.length === 1) {
      const p = parents[0];
      this.parentsEl.appendChild(h("div", { style: "display:flex;gap:8px;align-items:center" }, glyphSvg(p.glyph, { height: 24, paramRow: 6 }), h("b", {}, p.id), h("span", { class: "rm-muted" }, `${formatParams(p.params)} params`)));
    } else {
      this.parentsEl.appendChild(h("div", {}, `${parents.length} parent models: `, h("span", { class: "rm-muted rm-small" }, parents.slice(0, 6).map((p) => p.id).join(", ") + (parents.length > 6 ? "…" : ""))));
    }
    // Layer choice (only meaningful for one parent).
    clear(this.layersEl);
    this.layerBoxes = [];
    if (parents.length === 1) {
      for (const g of parents[0].glyph) {
        if (g.type === "classifier") continue;
        const box = h("input", { type: "checkbox", checked: true, value: g.index, "data-layer": g.index }) as HTMLInputElement;
        this.layerBoxes.push(box);
        this.layersEl.appendChild(h("label", { title: `layer ${g.index}: ${g.type}` }, box, h("i", { class: "rm-swatch sq", style: `background:${layerColor(g.type, g.fn)}` }), `${g.index} ${g.type === "activation" ? g.fn ?? "act" : g.type}`));
      }
      if (!this.layerBoxes.length) this.layersEl.appendChild(h("span", { class: "rm-muted rm-small" }, "the parent has no layers"));
    } else {
      this.layersEl.appendChild(h("span", { class: "rm-muted rm-small" }, "all layers (layer choice needs a single parent)"));
    }
  }

  private request(suggest?: SuggestValues): GenerateRequest | string {
    return buildGenerateRequest({
      parents: this.parents().map((p) => p.run),
      kind: this.kind,
      layers: this.layerBoxes.length ? { all: this.layerBoxes.map((b) => Number(b.value)), ticked: this.layerBoxes.filter((b) => b.checked).map((b) => Number(b.value)) } : null,
      form: this.form(),
      changeTypes: CHANGE_TYPES.filter((t) => this.changeBoxes.get(t)!.checked && !this.changeBoxes.get(t)!.disabled),
      blocks: this.hasAdd && this.blocksBox.checked,
      types: { all: [...this.typeBoxes.keys()], ticked: [...this.typeBoxes].filter(([, box]) => box.checked).map(([t]) => t) },
      sort: this.order === "generated" ? null : this.order,
      suggest: suggest ?? null,
    });
  }

  private form(): Parsed<GenerateFormValues> {
    const variation = this.kind === "variation";
    return parseGenerateForm({
      count: variation ? this.count.value : "",
      maxChanges: variation ? this.maxChanges.value : "",
      seed: variation ? this.seed.value : "",
      minParams: this.minParams.value,
      maxParams: this.maxTouched ? this.maxParams.value : this.data?.budget == null ? "" : String(this.data.budget),
      maxDepth: this.maxDepth.value,
      epochs: this.epochs.value,
    });
  }

  private async preview(suggest: boolean): Promise<void> {
    clear(this.messageEl);
    let sv: SuggestValues | undefined;
    if (suggest) {
      const p = parseSuggest(this.suggestK.value, this.suggestPool.value, this.kind === "variation");
      if (!p.ok) {
        this.messageEl.appendChild(h("div", { class: "rm-banner warn" }, p.error));
        return;
      }
      sv = p.value;
    }
    const req = this.request(sv);
    if (typeof req === "string") {
      this.messageEl.appendChild(h("div", { class: "rm-banner warn" }, req));
      return;
    }
    this.busy = true;
    this.previewBtn.disabled = true;
    this.suggestBtn.disabled = true;
    const btn = suggest ? this.suggestBtn : this.previewBtn;
    btn.textContent = suggest ? "Suggesting…" : "Generating…";
    try {
      const res = await this.cb.generate(req);
      this.candidates = res.candidates;
      this.surrogate = res.surrogate ?? null;
      this.suggestedRun = suggest;
      this.previewBudget = req.constraints?.max_params ?? null;
      this.lastMax = this.effectiveMax();
      this.ticksTouched = false;
      this.defaultTicks();
      this.renderCandidates(res);
    } catch (e) {
      this.candidates = [];
      this.surrogate = null;
      clear(this.resultEl);
      this.messageEl.appendChild(this.errorBanner("generate-error", `${suggest ? "Suggest" : "Generate"} failed: `, e));
    } finally {
      this.busy = false;
      this.previewBtn.disabled = false;
      this.suggestBtn.disabled = false;
      this.previewBtn.textContent = "Preview candidates";
      this.suggestBtn.textContent = "Suggest";
    }
  }

  /** Tick every candidate without a problem (invalid, over budget, under the minimum). */
  private defaultTicks(): void {
    const minP = intOrNull(this.minParams);
    this.ticked = new Set(this.candidates.filter((c) => candidateProblem(c, this.effectiveMax(), minP) === null).map((c) => c.key));
  }

  private renderCandidates(res: GenerateResponse | null): void {
    clear(this.resultEl);
    if (res) {
      clear(this.messageEl);
      const suggested = res.candidates.filter((c) => c.suggested === true).length;
      const text = this.suggestedRun
        ? `Suggested ${suggested || res.candidates.length} by expected improvement${res.summary ? ` (${res.summary.replace(/\.$/, "")})` : ""}.`
        : res.summary || `${res.made} of ${res.wanted} candidates made.`;
      this.messageEl.appendChild(h("div", { class: `rm-banner ${res.made < res.wanted && !this.suggestedRun ? "warn" : "ok"}`, "data-testid": "generate-summary" }, text));
      const dups = duplicatesNote(res.duplicates, "generate", this.data?.models ?? [], (id) => this.cb.onInspect?.(id), "generate-duplicates");
      if (dups) this.messageEl.appendChild(dups);
    }
    const note = surrogateNote(this.surrogate);
    if (note)
      this.resultEl.appendChild(h("div", { class: note.ready ? "rm-help" : "rm-banner warn", "data-testid": "generate-surrogate", "data-ready": String(note.ready), "data-models": this.surrogate?.n_models ?? "" }, note.text));
    if (!this.candidates.length) {
      this.resultEl.appendChild(h("div", { class: "rm-empty" }, "No candidates satisfy these constraints. Loosen them (budget, allowed layers, depth) and preview again."));
      return;
    }
    const budget = this.effectiveMax();
    const minP = intOrNull(this.minParams);
    if (budget !== this.previewBudget)
      this.resultEl.appendChild(h("div", { class: "rm-banner warn", "data-testid": "generate-stale" }, `The parameter maximum changed since this preview (${formatParams(this.previewBudget)} → ${formatParams(budget)}): preview again to re-check the candidates.`));
    const all = h("input", { type: "checkbox", title: "Tick all trainable" }) as HTMLInputElement;
    const trainable = this.candidates.filter((c) => candidateProblem(c, budget, minP) === null || c.valid);
    all.checked = trainable.every((c) => this.ticked.has(c.key));
    all.addEventListener("change", () => {
      this.ticksTouched = true;
      for (const c of this.candidates) if (c.valid) all.checked ? this.ticked.add(c.key) : this.ticked.delete(c.key);
      this.renderCandidates(null);
    });
    const sortSel = h("select", { "data-testid": "generate-sort", title: "Order of the candidates (best first)" }) as HTMLSelectElement;
    for (const o of ["generated", "predicted", "ei"] as const) sortSel.appendChild(h("option", { value: o }, ORDER_LABELS[o]));
    sortSel.value = this.order;
    sortSel.addEventListener("change", () => {
      this.order = sortSel.value as CandidateOrder;
      this.renderCandidates(null);
    });
    this.resultEl.appendChild(
      h(
        "div",
        { class: "rm-section rm-cand-head" },
        h("h3", {}, h("label", {}, all, ` Candidates (${this.candidates.length})`)),
        h("label", { class: "rm-muted rm-small" }, "order ", sortSel),
      ),
    );
    const best = this.surrogate?.best ?? null;
    const domain = predictionDomain(this.candidates.map((c) => c.predicted), best);
    for (const c of sortCandidates(this.candidates, this.order)) {
      const problem = candidateProblem(c, budget, minP);
      const box = h("input", { type: "checkbox", disabled: !c.valid, "data-testid": "candidate-tick" }) as HTMLInputElement;
      box.checked = this.ticked.has(c.key);
      box.addEventListener("change", () => {
        this.ticksTouched = true;
        box.checked ? this.ticked.add(c.key) : this.ticked.delete(c.key);
        this.updateEnqueueButton();
      });
      this.resultEl.appendChild(
        h(
          "div",
          { class: `rm-cand ${problem ? "invalid" : ""} ${c.suggested ? "suggested" : ""}`, "data-testid": "candidate", "data-key": c.key, "data-valid": String(c.valid), "data-over-budget": String(budget !== null && c.params !== null && c.params > budget), "data-suggested": String(c.suggested === true) },
          box,
          glyphSvg(c.glyph, { height: 22, paramRow: 5, blockWidth: 8, thinWidth: 3, gap: 1.5 }),
          h("span", { class: "rm-small", style: "text-align:right", title: c.params === null ? "" : c.params.toLocaleString() }, `${formatParams(c.params)} params`),
          this.surrogate || c.predicted !== undefined ? predictionEl(c, domain, best) : null,
          h("div", { class: "chg" }, c.suggested ? h("span", { class: "rm-suggested", "data-testid": "candidate-suggested", title: "Picked by Suggest: among the highest expected improvement" }, "suggested") : null, `from ${c.parent}: ${c.changes.join("; ") || "no change"}`),
          problem ? h("div", { class: "reason", "data-testid": "candidate-reason" }, ...this.reasonParts(c, problem)) : null,
        ),
      );
    }
    const btn = h("button", { class: "rm-btn primary", "data-testid": "enqueue-button" }, "Enqueue");
    btn.addEventListener("click", () => void this.enqueueTicked(btn));
    this.resultEl.appendChild(h("div", { class: "rm-sticky-bottom" }, btn, h("span", { class: "rm-muted rm-small", "data-testid": "enqueue-count" })));
    this.updateEnqueueButton();
  }

  /** A candidate's problem, with a link to the existing model when it is a duplicate. */
  private reasonParts(c: Candidate, problem: string): (string | HTMLElement)[] {
    const dup = c.reason === problem || !c.valid ? candidateDuplicate(c, this.data?.models ?? []) : null;
    return withDuplicateLink(problem, dup, (id) => this.cb.onInspect?.(id));
  }

  /** An error banner; a refused duplicate names the existing model and links to it. */
  private errorBanner(testid: string, prefix: string, e: unknown): HTMLElement {
    const msg = explainServerError((e as Error).message);
    const dup = errorDuplicate(msg, e instanceof ApiError ? e.duplicateOf : null, this.data?.models ?? []);
    return h("div", { class: "rm-banner err", "data-testid": testid }, ...withDuplicateLink(`${prefix}${msg}`, dup, (id) => this.cb.onInspect?.(id)));
  }

  private updateEnqueueButton(): void {
    const btn = this.resultEl.querySelector<HTMLButtonElement>('[data-testid="enqueue-button"]');
    if (!btn) return;
    const n = this.candidates.filter((c) => this.ticked.has(c.key) && c.valid).length;
    btn.textContent = `Enqueue ${n} for training`;
    btn.disabled = n === 0;
    const count = this.resultEl.querySelector('[data-testid="enqueue-count"]');
    if (count) count.textContent = `${n} of ${this.candidates.length} ticked`;
  }

  private async enqueueTicked(btn: HTMLButtonElement): Promise<void> {
    const chosen = this.candidates.filter((c) => this.ticked.has(c.key) && c.valid);
    if (!chosen.length) return;
    const ep = intField("Epochs", this.epochs.value, 1, 1000, null);
    clear(this.messageEl);
    if (!ep.ok) {
      this.messageEl.appendChild(h("div", { class: "rm-banner err", "data-testid": "enqueue-error" }, ep.error));
      return;
    }
    const origin: Origin = this.kind === "ablation" ? "ablation" : "variation";
    const req: EnqueueRequest = {
      items: candidateItems(chosen, origin, this.initSelect.value as InitMode, (run) => this.parentState(run)),
    };
    if (ep.value !== null) req.epochs = ep.value;
    if (this.data?.experiment) req.experiment = this.data.experiment;
    req.client_key = this.history.key(req); // the same body -> the same key -> the same ids
    btn.disabled = true;
    btn.textContent = "Enqueuing…";
    try {
      const res = await this.cb.enqueue(req);
      const noted = this.history.note(res.request_ids);
      clear(this.messageEl);
      this.messageEl.appendChild(h("div", { class: `rm-banner ${noted.fresh.length ? "ok" : "warn"}`, "data-testid": "enqueue-result", "data-request-ids": res.request_ids.join(",") }, enqueueMessage(res.request_ids, noted)));
      const dups = duplicatesNote(res.duplicates, "enqueue", this.data?.models ?? [], (id) => this.cb.onInspect?.(id), "enqueue-duplicates");
      if (dups) this.messageEl.appendChild(dups);
      this.candidates = [];
      this.ticked.clear();
      clear(this.resultEl);
      if (noted.fresh.length) this.cb.onEnqueued(res.request_ids);
    } catch (e) {
      this.messageEl.appendChild(this.errorBanner("enqueue-error", "Enqueue failed: ", e));
      btn.disabled = false;
      this.updateEnqueueButton();
    }
  }

  dispose(): void {
    this.root.remove();
  }
}

/** Bar track width (px) of the predicted accuracy. */
const BAR_W = 110;
const BAR_H = 12;

/** A candidate's predicted accuracy: a bar to the mean, a whisker over mean ± std, the best finished model's mark, the value as text. */
function predictionEl(c: Candidate, domain: [number, number], best: number | null): HTMLElement {
  const p = cleanPrediction(c.predicted);
  if (!p) return h("div", { class: "pred rm-muted rm-small", "data-testid": "candidate-predicted", "data-none": "true" }, "no prediction");
  const g = predictionBar(p, domain, BAR_W, best);
  const y = BAR_H / 2;
  const svg = s(
    "svg",
    { width: BAR_W, height: BAR_H, class: "rm-pred-bar", "data-testid": "predicted-bar", "data-bar": g.bar.toFixed(2), "data-lo": g.lo.toFixed(2), "data-hi": g.hi.toFixed(2), "data-domain": domain.join(",") },
    s("title", {}, `predicted ${formatPrediction(p)} (scale ${(domain[0] * 100).toFixed(0)}–${(domain[1] * 100).toFixed(0)}%)` + (best === null ? "" : `; best finished ${(best * 100).toFixed(1)}%`)),
    s("rect", { x: 0, y: 2, width: BAR_W, height: BAR_H - 4, fill: "#f0f0f0" }),
    s("rect", { x: 0, y: 2, width: g.bar.toFixed(2), height: BAR_H - 4, fill: "#90caf9", "data-testid": "predicted-mean" }),
    s("line", { x1: g.lo.toFixed(2), x2: g.hi.toFixed(2), y1: y, y2: y, stroke: "#0d47a1", "stroke-width": 1.2, "data-testid": "predicted-whisker" }),
    g.clippedLo ? null : s("line", { x1: g.lo.toFixed(2), x2: g.lo.toFixed(2), y1: y - 3, y2: y + 3, stroke: "#0d47a1", "stroke-width": 1.2 }),
    g.clippedHi ? null : s("line", { x1: g.hi.toFixed(2), x2: g.hi.toFixed(2), y1: y - 3, y2: y + 3, stroke: "#0d47a1", "stroke-width": 1.2 }),
    g.best === null ? null : s("line", { x1: g.best.toFixed(2), x2: g.best.toFixed(2), y1: 0, y2: BAR_H, stroke: "#e65100", "stroke-width": 1.5, "stroke-dasharray": "2,1", "data-testid": "predicted-best" }),
  );
  return h(
    "div",
    { class: "pred", "data-testid": "candidate-predicted", "data-accuracy": p.accuracy, "data-std": p.std, "data-ei": p.ei },
    svg,
    h("span", { class: "rm-small" }, formatPrediction(p)),
    h("span", { class: "rm-muted rm-small", title: "expected improvement over the best finished model within the budget" }, formatEi(p)),
  );
}

function intOrNull(el: HTMLInputElement): number | null {
  const v = Number(el.value);
  return el.value !== "" && Number.isFinite(v) ? Math.round(v) : null;
}
