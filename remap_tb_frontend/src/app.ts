// The dashboard controller: owns the state (experiment, models, projections,
// selection, filters, budget, queue), talks to the server through the client,
// polls for new runs, and hands each view the slice of state it draws.
// Views and charts never fetch and never read this state directly.

import type { Experiment, ModelDetail, ModelSummary, ProjectionKind, ProjectionResponse, QueueResponse, CompareResponse, Spec } from "./types";
import { RemapClient } from "./client";
import { ModelMap, perfHook } from "./charts/map";
import type { ColorBy } from "./lib/color";
import { emptyFilters, filterIds, Filters, isFilterActive } from "./lib/filters";
import { deltaVsParent, isRanked } from "./lib/sort";
import { h, clear, isEditableTarget } from "./lib/dom";
import { clampBudget } from "./lib/budget";
import { positionNotes } from "./lib/status";
import { isFinalState, newlyFinished, pollingConfig, PollingConfig, projectionRetryDelay, queueBusy } from "./lib/polling";
import { Toolbar } from "./views/toolbar";
import { FiltersPanel } from "./views/filters";
import { MapLegend } from "./views/legend";
import { Tooltip } from "./views/tooltip";
import { Tabs, TabName } from "./views/tabs";
import { Inspector } from "./views/inspector";
import { CompareView } from "./views/compare";
import { ClassesView } from "./views/classes";
import { GenerateView } from "./views/generate";
import { EditorView } from "./views/editor";
import { QueueView } from "./views/queue";
import { Drawer } from "./views/drawer";
import { ErrorBanners } from "./views/errors";
import { noRunsState } from "./views/empty";
import { RequestTracker } from "./views/tracker";
import { epochMismatch } from "./lib/epochs";
import { specChanges } from "./lib/align";
import { applyModels } from "./lib/models_delta";


/** A default parameter budget: the 90th percentile of the population, 2 significant digits. */
export function defaultBudget(params: number[]): number | null {
  const v = params.filter((p) => p > 0).sort((a, b) => a - b);
  if (!v.length) return null;
  const p90 = v[Math.min(v.length - 1, Math.floor(0.9 * (v.length - 1)))];
  const mag = Math.pow(10, Math.floor(Math.log10(p90)) - 1);
  return Math.ceil(p90 / mag) * mag;
}

/** The budget after loading models: a budget the user chose (even "none") is kept; else the default. */
export function budgetAfterLoad(current: number | null, userChose: boolean, params: number[]): number | null {
  return current !== null || userChose ? current : defaultBudget(params);
}

/** A cheap fingerprint of what the map and tables show about the models. */
function modelsSignature(models: ModelSummary[]): string {
  let s = `${models.length}|`;
  for (const m of models) s += `${m.id}:${m.status.state}:${m.status.epoch}:${m.wall_time ?? ""};`;
  return s;
}

export class App {
  // ---- state
  private experiments: Experiment[] = [];
  private unreadable: { run: string; reason: string }[] = [];
  private experiment: string | null = null;
  private classNames: string[] = [];
  private models: ModelSummary[] = [];
  private byId = new Map<string, ModelSummary>();
  private modelsSig = "";
  /** The `version` of `models` as the server last answered it (sent back as `since`). */
  private modelsVersion: string | null = null;
  private knownIds: Set<string> | null = null;
  private fresh = new Set<string>();
  private kind: ProjectionKind = "structural";
  private projection: ProjectionResponse | null = null;
  private positions = new Map<string, { x: number; y: number }>();
  private colorBy: ColorBy = { kind: "accuracy" };
  private hoverClass: number | null = null;
  private filters: Filters = emptyFilters();
  private visible: Set<string> | null = null;
  private filtersOpen = false;
  private showEdges = false;
  private lassoMode = false;
  private selected = new Set<string>();
  private pinned = new Set<string>();
  private inspected: string | null = null;
  private budget: number | null = null;
  /** Budgets the user set (typed or dragged), per experiment: never replaced by the default. */
  private budgetChosen = new Map<string, number | null>();
  private details = new Map<string, ModelDetail>();
  /** Parents whose detail is being fetched for a derived change list. */
  private readonly parentFetches = new Set<string>();
  private detailError: string | null = null;
  private detailLoading = false;
  private compare: { key: string; res: CompareResponse | null; error: string | null; loading: boolean } = { key: "", res: null, error: null, loading: false };
  private queue: QueueResponse | null = null;
  private queueError: string | null = null;
  private queueSig = "";
  /** Requests seen finished in this session (a request id is its model's id). */
  private finishedSeen = new Set<string>();
  /** Finished requests whose model does not show its final state yet -> when to stop looking (Date.now()). */
  private awaiting = new Map<string, number>();
  private readonly poll: PollingConfig = pollingConfig();
  private queueTimer = 0;
  private awaitTimer = 0;
  private projectionRetry = 0;
  /** Cancelled, failed and diverged runs on the Pareto front (the legend's checkbox). */
  private includeStopped = false;

  // ---- views
  private readonly root: HTMLElement;
  private readonly mapWrap: HTMLElement;
  private readonly globalWarn: HTMLElement;
  private readonly map: ModelMap;
  private readonly toolbar: Toolbar;
  private readonly filtersPanel: FiltersPanel;
  private readonly legend: MapLegend;
  private readonly tooltip: Tooltip;
  private readonly info: HTMLElement;
  private readonly mapNote: HTMLElement;
  private readonly tabs: Tabs;
  private readonly inspector: Inspector;
  private readonly compareView: CompareView;
  private readonly classes: ClassesView;
  private readonly generate: GenerateView;
  private readonly editor: EditorView;
  private readonly queueView: QueueView;
  private readonly drawer: Drawer;
  private readonly errors: ErrorBanners;
  private readonly tracker: RequestTracker;
  private emptyEl: HTMLElement | null = null;
  private timers: number[] = [];
  private compareTimer = 0;
  private disposed = false;

  constructor(
    host: HTMLElement,
    private readonly client: RemapClient,
  ) {
    this.root = h("div", { class: "rm-root", "data-testid": "remap-root" });
    host.appendChild(this.root);
    this.errors = new ErrorBanners(host);

    this.toolbar = new Toolbar(this.root, {
      onExperiment: (id) => void this.switchExperiment(id),
      onKind: (k) => void this.switchKind(k),
      onColorBy: (c) => {
        this.colorBy = c;
        this.refreshMap();
        this.refreshToolbar();
        this.refreshSide();
      },
      onToggleFilters: () => {
        this.filtersOpen = !this.filtersOpen;
        this.refreshFilters();
        this.refreshToolbar();
      },
      onEdges: (on) => {
        this.showEdges = on;
        this.refreshMap();
        this.refreshToolbar();
      },
      onLassoMode: (on) => {
        this.lassoMode = on;
        this.refreshMap();
        this.refreshToolbar();
      },
      onBudget: (v) => this.setBudget(v),
      onResetZoom: () => this.map.resetZoom(),
    });

    this.mapWrap = h("div", { class: "rm-mapwrap", "data-testid": "map" });
    this.root.appendChild(this.mapWrap);
    this.map = new ModelMap(this.mapWrap, {
      onHover: (id, x, y, stacked) => this.onHover(id, x, y, stacked),
      onClick: (id, additive) => this.onMapClick(id, additive),
      onLasso: (ids, additive) => {
        if (!additive) this.selected.clear();
        for (const id of ids) this.selected.add(id);
        this.selectionChanged(true);
      },
      onBudget: (v) => this.setBudget(v),
    });
    this.legend = new MapLegend(this.mapWrap, (on) => {
      this.includeStopped = on;
      this.refreshMap();
    });
    this.filtersPanel = new FiltersPanel(
      this.mapWrap,
      (f) => {
        this.filters = f;
        this.visible = isFilterActive(f) ? filterIds(this.models, f) : null;
        this.refreshMap();
        this.refreshFilters();
        this.refreshToolbar();
        this.refreshDrawer();
      },
      () => {
        this.filtersOpen = false;
        this.refreshFilters();
        this.refreshToolbar();
      },
    );
    this.tooltip = new Tooltip(this.mapWrap);
    this.info = h("div", { class: "rm-map-info", "data-testid": "map-info" });
    this.mapWrap.appendChild(this.info);
    this.mapNote = h("div", { class: "rm-map-note", "data-testid": "map-note", style: "display:none" });
    this.mapWrap.appendChild(this.mapNote);
    this.globalWarn = h("div", { style: "position:absolute;left:10px;bottom:28px;z-index:4;display:none" });
    this.mapWrap.appendChild(this.globalWarn);

    const side = h("div", { class: "rm-side", "data-testid": "side-panel" });
    this.root.appendChild(side);
    this.tabs = new Tabs(side, ["inspector", "compare", "generate", "editor", "queue", "classes"], () => this.refreshSide());
    const panel = (t: TabName) => this.tabs.panels.get(t)!;
    this.inspector = new Inspector(panel("inspector"), {
      onInspect: (id) => this.inspect(id),
      onTogglePin: (id) => this.togglePin(id),
      onGenerate: (id) => {
        this.inspect(id);
        this.tabs.select("generate");
      },
      onEdit: (id) => void this.openInEditor(id),
      onHoverClass: (i) => this.setHoverClass(i),
      exportUrl: (run, f) => this.client.exportUrl(run, f),
    });
    this.compareView = new CompareView(panel("compare"), {
      onInspect: (id) => this.inspect(id, true),
      onRemove: (id) => {
        this.selected.delete(id);
        this.selectionChanged(false);
      },
      onHoverClass: (i) => this.setHoverClass(i),
    });
    this.generate = new GenerateView(panel("generate"), {
      generate: (req) => this.client.generate(req),
      enqueue: (req) => this.client.enqueue(req),
      onEnqueued: (ids) => this.enqueued(ids),
      onInspect: (id) => this.showModel(id),
    });
    this.editor = new EditorView(panel("editor"), {
      validate: (req) => this.client.validate(req),
      enqueue: (req) => this.client.enqueue(req),
      loadModel: (run) => this.fetchDetail(run),
      defaultInput: () => this.defaultInput(),
      onEnqueued: (ids) => this.enqueued(ids),
      onInspect: (id) => this.showModel(id),
    });
    this.queueView = new QueueView(panel("queue"), {
      onCancel: (id) => this.queueAction(() => this.client.cancel(id), "Cancel"),
      onReorder: (id, p) => void this.queueAction(() => this.client.reorder(id, p), "Reorder"),
      onInspect: (id) => this.inspect(id, true),
      hasModel: (id) => this.byId.has(id),
    });
    this.classes = new ClassesView(panel("classes"), {
      onHoverClass: (i) => this.setHoverClass(i),
      onColorByClass: (i) => {
        this.colorBy = i === null ? { kind: "accuracy" } : { kind: "class", index: i };
        this.refreshMap();
        this.refreshToolbar();
        this.refreshSide();
      },
    });
    this.tracker = new RequestTracker(side, {
      onCancel: (id) => this.queueAction(() => this.client.cancel(id), "Cancel"),
      onInspect: (id) => this.showModel(id),
      onOpenQueue: () => this.tabs.select("queue"),
      hasModel: (id) => this.byId.has(id),
    });
    this.drawer = new Drawer(this.root, {
      onInspect: (id) => this.inspect(id, true),
      onToggleSelect: (id) => {
        if (this.selected.has(id)) this.selected.delete(id);
        else this.selected.add(id);
        this.selectionChanged(true);
      },
      onTogglePin: (id) => this.togglePin(id),
      onClearSelection: () => this.clearSelection(),
    });
    document.addEventListener("keydown", this.onKey);
  }

  async start(): Promise<void> {
    this.refreshToolbar();
    this.refreshSide();
    const schema = this.loadSchema();
    try {
      const ex = await this.client.experiments();
      this.experiments = ex.experiments;
      this.unreadable = ex.unreadable;
      if (ex.unreadable.length)
        this.errors.warn(
          ex.unreadable.slice(0, 3).map((u) => `${u.run}: ${u.reason}`).join("; ") + (ex.unreadable.length > 3 ? ` (+${ex.unreadable.length - 3} more)` : ""),
          `${ex.unreadable.length} run${ex.unreadable.length === 1 ? "" : "s"} could not be read`,
        );
    } catch (e) {
      this.errors.show((e as Error).message, "Could not list experiments");
    }
    const first = [...this.experiments].sort((a, b) => b.n_models - a.n_models)[0];
    if (!first) {
      this.showEmpty();
    } else {
      await this.switchExperiment(first.id);
    }
    await schema;
    void this.queueLoop();
    this.timers.push(window.setInterval(() => void this.pollModels(), this.poll.modelsMs));
  }

  /** Poll the queue, then again after the idle or the active delay (see lib/polling). */
  private async queueLoop(): Promise<void> {
    await this.pollQueue();
    if (this.disposed) return;
    window.clearTimeout(this.queueTimer);
    const busy = queueBusy(this.queue) || this.awaiting.size > 0;
    this.queueTimer = window.setTimeout(() => void this.queueLoop(), busy ? this.poll.queueActiveMs : this.poll.queueIdleMs);
  }

  /** Fetch `models` until every awaited finished request shows its final state (or time runs out). */
  private async pollAwaited(): Promise<void> {
    window.clearTimeout(this.awaitTimer);
    this.awaitTimer = 0;
    if (this.disposed || !this.awaiting.size) return;
    await this.pollModels(true);
    const now = Date.now();
    for (const [id, until] of this.awaiting) if (isFinalState(this.byId.get(id)?.status.state) || now > until) this.awaiting.delete(id);
    if (this.awaiting.size && !this.disposed && !this.awaitTimer) this.awaitTimer = window.setTimeout(() => void this.pollAwaited(), this.poll.awaitMs);
  }

  dispose(): void {
    this.disposed = true;
    for (const t of this.timers) window.clearInterval(t);
    window.clearTimeout(this.queueTimer);
    window.clearTimeout(this.awaitTimer);
    window.clearTimeout(this.compareTimer);
    document.removeEventListener("keydown", this.onKey);
    this.map.dispose();
    this.root.remove();
    this.errors.dispose();
  }

  // ------------------------------------------------------------------ loading

  private showEmpty(): void {
    if (this.emptyEl) this.emptyEl.remove();
    this.emptyEl = noRunsState(this.unreadable);
    this.mapWrap.appendChild(this.emptyEl);
    this.root.classList.add("rm-no-models"); // no drawer until there is a model to list
    document.body.dataset.mapDrawn = String(performance.now());
  }

  private hideEmpty(): void {
    if (this.emptyEl) {
      this.emptyEl.remove();
      this.emptyEl = null;
    }
    this.root.classList.remove("rm-no-models");
  }

  private async switchExperiment(id: string): Promise<void> {
    this.experiment = id;
    this.classNames = this.experiments.find((e) => e.id === id)?.class_names ?? [];
    this.models = [];
    this.byId = new Map();
    this.modelsSig = "";
    this.modelsVersion = null;
    this.knownIds = null;
    this.fresh.clear();
    this.selected.clear();
    this.inspected = null;
    this.projection = null;
    this.positions = new Map();
    this.budget = this.budgetChosen.get(id) ?? null;
    this.details.clear();
    await Promise.all([this.loadModels(), this.loadProjection()]);
    this.refreshAll();
  }

  private async loadModels(): Promise<boolean> {
    const exp = this.experiment;
    if (!exp) return false;
    try {
      const held = this.modelsVersion;
      const res = await this.client.models(exp, held ?? undefined);
      if (exp !== this.experiment || this.disposed || held !== this.modelsVersion) return false;
      this.modelsVersion = res.version ?? null;
      const models = applyModels(this.models, held, res);
      if (models === null) return false;
      const sig = modelsSignature(models);
      if (sig === this.modelsSig) return false;
      this.modelsSig = sig;
      this.models = models;
      this.byId = new Map(models.map((m) => [m.id, m]));
      if (res.class_names.length) this.classNames = res.class_names;
      if (this.knownIds) {
        for (const m of models) if (!this.knownIds.has(m.id)) this.fresh.add(m.id);
      }
      this.knownIds = new Set(models.map((m) => m.id));
      this.visible = isFilterActive(this.filters) ? filterIds(this.models, this.filters) : null;
      this.budget = budgetAfterLoad(this.budget, this.budgetChosen.has(exp), models.map((m) => m.params));
      for (const id of [...this.selected]) if (!this.byId.has(id)) this.selected.delete(id);
      if (models.length) this.hideEmpty();
      else this.showEmpty();
      return true;
    } catch (e) {
      this.errors.show((e as Error).message, "Could not load models");
      return false;
    }
  }

  private async loadProjection(): Promise<boolean> {
    const exp = this.experiment;
    const kind = this.kind;
    if (!exp) return false;
    try {
      const res = await this.client.projection(exp, kind);
      if (exp !== this.experiment || kind !== this.kind || this.disposed) return false;
      const changed = !this.projection || this.projection.version !== res.version || this.projection.kind !== res.kind || this.projection.points.length !== res.points.length;
      this.projection = res;
      if (res.error) this.errors.show(res.error, `The ${kind} layout could not be updated`);
      if (changed) this.positions = new Map(res.points.map((p) => [p.id, { x: p.x, y: p.y }]));
      if (res.computing) {
        window.setTimeout(() => {
          if (this.kind === kind && this.experiment === exp) void this.loadProjection().then((c) => c && this.refreshAfterData());
        }, projectionRetryDelay(this.poll.projectionRetryMs, this.projectionRetry++));
      } else this.projectionRetry = 0;
      return changed;
    } catch (e) {
      this.errors.show((e as Error).message, `Could not load the ${kind} projection`);
      return false;
    }
  }

  private async switchKind(k: ProjectionKind): Promise<void> {
    if (k === this.kind) return;
    this.kind = k;
    this.refreshToolbar();
    if (await this.loadProjection()) {
      this.refreshMap();
      this.refreshLegend();
      this.refreshToolbar();
    }
  }

  private async pollModels(evenHidden = false): Promise<void> {
    if ((document.hidden && !evenHidden) || !this.experiment) return;
    const changed = await this.loadModels();
    if (changed) {
      await this.loadProjection();
      this.refreshAfterData();
    }
  }

  private async pollQueue(): Promise<void> {
    if (this.disposed || (document.hidden && this.queue)) return;
    try {
      const q = await this.client.queue();
      this.queueError = null;
      const sig = q.requests.map((r) => `${r.id}:${r.state}:${r.epoch}:${r.priority}`).join(";") + `|${q.worker_alive}`;
      const changed = sig !== this.queueSig;
      const hadQueue = this.queueSig !== "";
      this.queueSig = sig;
      this.queue = q;
      if (changed) this.tracker.update(q);
      // A request that just finished: fetch its model now, and again until it shows its final
      // state (TensorBoard may read the run's end a moment after the queue moved it).
      const until = Date.now() + this.poll.awaitForMs;
      for (const id of newlyFinished(q, this.finishedSeen, !hadQueue))
        if (!isFinalState(this.byId.get(id)?.status.state)) this.awaiting.set(id, until);
      if (this.awaiting.size && this.experiment) {
        await this.pollAwaited();
        if (changed) this.refreshQueue();
      } else if (changed) {
        this.refreshQueue();
        if (hadQueue) {
          // Something was trained (or progressed): fetch the new runs.
          if (!this.experiment) {
            const ex = await this.client.experiments().catch(() => null);
            if (ex && ex.experiments.length) {
              this.experiments = ex.experiments;
              await this.switchExperiment(ex.experiments[0].id);
            }
          } else await this.pollModels();
        }
      }
    } catch (e) {
      this.queueError = (e as Error).message;
      this.refreshQueue();
    }
  }

  /** Run a queue action; false (with an error banner) when the server refused it. */
  private async queueAction(fn: () => Promise<unknown>, what: string): Promise<boolean> {
    let ok = true;
    try {
      await fn();
    } catch (e) {
      ok = false;
      this.errors.show((e as Error).message, `${what} failed`);
    }
    await this.pollQueue();
    return ok;
  }

  private async fetchDetail(run: string): Promise<ModelDetail> {
    const d = await this.client.model(run);
    this.details.set(d.id, d);
    return d;
  }

  /** The current experiment's input (every spec of it uses the same), for "start empty". */
  private defaultInput(): Spec["input"] | null {
    const e = this.experiments.find((x) => x.id === this.experiment);
    return e ? { shape: [...e.input_shape], num_classes: e.num_classes } : null;
  }

  private async loadSchema(): Promise<void> {
    try {
      const schema = await this.client.schema();
      if (this.disposed) return;
      this.editor.setSchema(schema);
      this.generate.setLayerTypes(schema.layer_types);
    } catch (e) {
      if (this.disposed) return;
      this.editor.setSchema(null, (e as Error).message);
    }
  }

  private async openInEditor(id: string): Promise<void> {
    const m = this.byId.get(id);
    if (!m) return;
    this.tabs.select("editor");
    try {
      const d = this.details.get(id) ?? (await this.fetchDetail(m.run));
      this.editor.load(d);
    } catch (e) {
      this.errors.show((e as Error).message, `Could not load ${id}`);
    }
  }

  // ------------------------------------------------------------------ interactions

  private onKey = (e: KeyboardEvent): void => {
    if (e.key !== "Escape") return;
    if (isEditableTarget(e.target)) return; // Escape in a field belongs to the field
    if (this.selected.size) this.clearSelection();
    else if (this.inspected) {
      this.inspected = null;
      this.refreshMap();
      this.refreshSide();
      this.refreshDrawer();
    }
    this.tooltip.hide();
  };

  private clearSelection(): void {
    this.selected.clear();
    this.selectionChanged(false);
  }

  private onHover(id: string | null, x: number, y: number, stacked = 1): void {
    const m = id ? this.byId.get(id) : undefined;
    if (!m) {
      this.tooltip.hide();
      return;
    }
    const delta = deltaVsParent(m, this.byId);
    this.tooltip.show(m, delta, x, y, stacked, delta === null ? null : epochMismatch(m, m.parent ? this.byId.get(m.parent) : null));
  }

  private onMapClick(id: string | null, additive: boolean): void {
    if (!id) return;
    if (additive) {
      if (this.selected.has(id)) this.selected.delete(id);
      else this.selected.add(id);
      this.selectionChanged(true);
      return;
    }
    this.inspect(id, true);
  }

  /** Inspect a model named in a message (a duplicate's existing model, a tracked request) on the inspector tab. */
  private showModel(id: string): void {
    if (!this.byId.has(id)) return;
    this.tabs.select("inspector", true);
    this.inspect(id);
  }

  /** Requests were enqueued: follow them (cancel-ready at once) and poll the queue now. */
  private enqueued(ids: string[]): void {
    this.tracker.track(ids);
    if (this.queue) this.tracker.update(this.queue);
    void this.pollQueue();
  }

  private inspect(id: string, showTab = false): void {
    const m = this.byId.get(id);
    if (!m) return;
    if (this.inspected !== id) {
      // Another model: its panels start at the top (not where the previous model's were scrolled).
      for (const t of ["inspector", "generate"] as const) this.tabs.panels.get(t)!.scrollTop = 0;
    }
    this.inspected = id;
    this.fresh.delete(id);
    this.detailError = null;
    if (showTab && !["generate", "editor", "inspector"].includes(this.tabs.active)) this.tabs.select("inspector", true);
    const cached = this.details.get(id);
    if (!cached || cached.wall_time !== m.wall_time || cached.status.state !== m.status.state) {
      this.detailLoading = true;
      this.client
        .model(m.run)
        .then((d) => {
          this.details.set(d.id, d);
          this.detailLoading = false;
          if (this.inspected === id) this.refreshSide();
        })
        .catch((e: Error) => {
          this.detailLoading = false;
          if (this.inspected === id) {
            this.detailError = e.message;
            this.refreshSide();
          }
        });
    }
    this.refreshMap();
    this.refreshSide();
    this.refreshDrawer();
  }

  private togglePin(id: string): void {
    if (this.pinned.has(id)) this.pinned.delete(id);
    else this.pinned.add(id);
    this.refreshDrawer();
    this.refreshSide();
  }

  private selectionChanged(userAction: boolean): void {
    if (userAction && this.selected.size >= 2 && this.tabs.active !== "generate") this.tabs.select("compare", true);
    this.refreshMap();
    this.refreshDrawer();
    this.scheduleCompare();
    this.refreshSide();
  }

  private setHoverClass(i: number | null): void {
    if (this.hoverClass === i) return;
    this.hoverClass = i;
    this.refreshMap();
    this.refreshLegend();
  }

  private setBudget(v: number | null): void {
    this.budget = clampBudget(v);
    if (this.experiment) this.budgetChosen.set(this.experiment, this.budget);
    this.refreshMap();
    this.refreshToolbar();
    this.refreshSide();
    this.refreshDrawer();
  }

  /** The models compared: the selection, at most 8 (the most accurate finished ones when more). */
  private compareIds(): string[] {
    let ids = [...this.selected].filter((id) => this.byId.has(id));
    if (ids.length > 8) {
      ids = ids
        .map((id) => this.byId.get(id)!)
        .sort((a, b) => Number(isRanked(b)) - Number(isRanked(a)) || (b.val_accuracy ?? -1) - (a.val_accuracy ?? -1))
        .slice(0, 8)
        .map((m) => m.id);
    }
    return ids;
  }

  private scheduleCompare(): void {
    const ids = this.compareIds();
    if (ids.length < 2) {
      window.clearTimeout(this.compareTimer);
      this.compare = { key: "", res: null, error: null, loading: false };
      return;
    }
    const key = ids.map((id) => `${id}@${this.byId.get(id)?.wall_time ?? ""}`).join(",");
    if (key === this.compare.key && (this.compare.res || this.compare.loading)) return;
    window.clearTimeout(this.compareTimer);
    this.compare = { key, res: null, error: null, loading: true };
    this.compareTimer = window.setTimeout(() => {
      const runs = ids.map((id) => this.byId.get(id)!.run);
      this.client
        .compare(runs)
        .then((res) => {
          if (this.compare.key !== key) return;
          this.compare = { key, res, error: null, loading: false };
          this.refreshSide();
        })
        .catch((e: Error) => {
          if (this.compare.key !== key) return;
          this.compare = { key, res: null, error: e.message, loading: false };
          this.refreshSide();
        });
    }, 150);
  }

  // ------------------------------------------------------------------ refresh

  private refreshAll(): void {
    this.refreshToolbar();
    this.refreshMap();
    this.refreshLegend();
    this.refreshFilters();
    this.refreshDrawer();
    this.refreshSide();
    this.refreshQueue();
  }

  private refreshAfterData(): void {
    if (this.inspected && !this.byId.has(this.inspected)) this.inspected = null;
    this.tracker.update(this.queue); // a tracked request's model may have just arrived: link it
    this.scheduleCompare();
    this.refreshAll();
  }

  private refreshToolbar(): void {
    const n = this.models.length;
    const parts = [`${n} model${n === 1 ? "" : "s"}`, ...this.positionNotes()];
    if (this.visible) parts.push(`${this.visible.size} pass the filters`);
    if (this.projection?.stress !== null && this.projection?.stress !== undefined) parts.push(`stress ${this.projection.stress.toFixed(3)}`);
    this.toolbar.update({
      experiments: this.experiments,
      experiment: this.experiment,
      kind: this.kind,
      colorBy: this.colorBy,
      classNames: this.classNames,
      filtersActive: isFilterActive(this.filters),
      filtersOpen: this.filtersOpen,
      showEdges: this.showEdges,
      lassoMode: this.lassoMode,
      budget: this.budget,
      status: parts.join(" · "),
    });
  }

  private refreshMap(): void {
    if (!this.experiment) return;
    this.refreshLegend();
    this.map.update({
      models: this.models,
      positions: this.positions,
      kind: this.shownKind(),
      layoutKey: `${this.projection?.kind}:${this.projection?.version}:${this.models.length}`,
      axes: this.projection?.axes ?? { x: "", y: "" },
      colorBy: this.colorBy,
      hoverClass: this.hoverClass,
      visible: this.visible,
      selected: this.selected,
      inspected: this.inspected,
      fresh: this.fresh,
      showEdges: this.showEdges,
      lassoMode: this.lassoMode,
      budget: this.budget,
      includeStopped: this.includeStopped,
    });
    const help = this.lassoMode ? "Drag to lasso-select (Ctrl adds)" : "Scroll to zoom · drag to pan · click to inspect · Shift-click / Shift-drag to select · Esc clears";
    const notes = this.positionNotes();
    this.info.textContent = [help, ...notes].join(" · ");
    // Nothing on the map: say why in the middle of it (a layout on its way, or no predictions).
    const onMap = this.models.some((m) => this.positions.has(m.id));
    const note = !this.models.length || onMap || !this.projection ? null : this.projection.computing ? "Computing the layout…" : notes.join(" · ") || null;
    this.mapNote.textContent = note ?? "";
    this.mapNote.style.display = note ? "" : "none";
  }

  /** The kind of the layout on show (the one asked for until it arrives). */
  private shownKind(): ProjectionKind {
    const k = this.projection?.kind;
    return k === "structural" || k === "structural_normalised" || k === "posthoc" || k === "size" ? k : this.kind;
  }

  /** Why models are not on the map (the layout is still computing, or no predictions). */
  private positionNotes(): string[] {
    const kind = this.shownKind();
    return positionNotes(this.models, this.positions, kind, this.projection?.computing ?? false);
  }

  private refreshLegend(): void {
    let cancelled = 0,
      failed = 0,
      untrained = 0;
    for (const m of this.models) {
      if (m.status.state === "cancelled") cancelled++;
      else if (m.status.state === "failed" || m.status.state === "diverged") failed++;
      else if (m.status.state === "untrained") untrained++;
    }
    this.legend.update({
      colorBy: this.colorBy,
      hoverClass: this.hoverClass,
      classNames: this.classNames,
      kind: this.kind,
      showEdges: this.showEdges,
      stopped: { cancelled, failed },
      untrained,
      includeStopped: this.includeStopped,
    });
  }

  private refreshFilters(): void {
    this.filtersPanel.update({ open: this.filtersOpen, shown: this.visible ? this.visible.size : this.models.length, total: this.models.length });
  }

  private refreshDrawer(): void {
    this.drawer.update({ models: this.models, byId: this.byId, selected: this.selected, pinned: this.pinned, inspected: this.inspected, visible: this.visible, budget: this.budget });
  }

  private refreshQueue(): void {
    const active = this.queue ? this.queue.requests.filter((r) => r.state === "pending" || r.state === "running").length : 0;
    this.tabs.badge("queue", this.queue && !this.queue.worker_alive && active ? "!" : active ? String(active) : null);
    clear(this.globalWarn);
    const warn = !!this.queue && !this.queue.worker_alive && active > 0;
    this.globalWarn.style.display = warn ? "" : "none";
    if (warn) {
      const open = h("button", { class: "rm-btn small" }, "Open the queue");
      open.addEventListener("click", () => this.tabs.select("queue"));
      this.globalWarn.appendChild(
        h(
          "div",
          { class: "rm-banner warn", "data-testid": "worker-warning-map", style: "display:inline-flex;gap:8px;align-items:center;padding:4px 10px;margin:0" },
          h("span", {}, h("b", {}, "No worker is alive"), ` · ${active} request${active === 1 ? "" : "s"} waiting`),
          open,
        ),
      );
    }
    if (this.tabs.active === "queue") this.queueView.update({ queue: this.queue, error: this.queueError, logdirHint: "LOGDIR" });
  }

  /**
   * A hand-crafted model with a parent and no recorded change list (enqueued before the
   * editor recorded one, or by a script): its changes relative to the parent, from the
   * comparison's alignment, once both specs are loaded (null until then, or when not needed).
   */
  private derivedChanges(m: ModelSummary): string[] | null {
    if (m.origin !== "handcrafted" || !m.parent || m.changes.length) return null;
    const parent = this.byId.get(m.parent);
    const child = this.details.get(m.id);
    if (!parent || !child) return null;
    const pd = this.details.get(parent.id);
    if (!pd) {
      if (!this.parentFetches.has(parent.id)) {
        this.parentFetches.add(parent.id);
        this.fetchDetail(parent.run)
          .then(() => this.inspected === m.id && this.refreshSide())
          .catch(() => undefined)
          .finally(() => this.parentFetches.delete(parent.id));
      }
      return null;
    }
    return specChanges(pd.spec.layers, child.spec.layers);
  }

  private refreshSide(): void {
    const t = this.tabs.active;
    const n = this.selected.size;
    this.tabs.badge("compare", n ? String(n) : null);
    const insp = this.inspected ? this.byId.get(this.inspected) ?? null : null;
    if (t === "inspector") {
      const parent = insp?.parent ? this.byId.get(insp.parent) : undefined;
      // A delta only between finished runs (a cancelled run's accuracy is not comparable).
      const parentAccuracy = insp && parent && deltaVsParent(insp, this.byId) !== null ? parent.val_accuracy : null;
      this.inspector.update({
        epochWarning: insp && parentAccuracy !== null ? epochMismatch(insp, parent) : null,
        derivedChanges: insp ? this.derivedChanges(insp) : null,
        summary: insp,
        detail: insp ? this.details.get(insp.id) ?? null : null,
        loading: this.detailLoading,
        error: this.detailError,
        classNames: this.classNames,
        pinned: insp ? this.pinned.has(insp.id) : false,
        hoverClass: this.hoverClass,
        parentAccuracy,
      });
    } else if (t === "compare") {
      this.scheduleCompare();
      this.compareView.update({
        ids: [...this.selected],
        response: this.compare.res,
        loading: this.compare.loading,
        error: this.compare.error,
        classNames: this.classNames,
        hoverClass: this.hoverClass,
      });
    } else if (t === "classes") {
      const sel = this.models.filter((m) => this.selected.has(m.id));
      this.classes.update({
        classNames: this.classNames,
        models: sel.length ? sel : this.models,
        scope: sel.length ? `${sel.length} selected model${sel.length === 1 ? "" : "s"}` : `all ${this.models.length} models`,
        colorBy: this.colorBy,
        hoverClass: this.hoverClass,
      });
    } else if (t === "generate") {
      this.generate.update({ inspected: insp, selected: this.models.filter((m) => this.selected.has(m.id)), budget: this.budget, experiment: this.experiment, models: this.models });
    } else if (t === "editor") {
      this.editor.update({ inspected: insp, budget: this.budget, experiment: this.experiment, models: this.models });
    } else if (t === "queue") {
      this.refreshQueue();
    }
  }
}

/** Stamp the start of render() for the performance hook. */
export function markRenderStart(): void {
  perfHook().renderStart = performance.now();
}
