// Weight inheritance in the dashboard (issue 10): the "start from the parent's weights /
// from scratch" choice of the generate panel and the editor, the `init` each enqueued
// item carries, and the inspector's words for what a run inherited. Pure functions.

import type { Candidate, EnqueueItem, InitMode, InitRecord, Origin, State } from "../types";

export const INIT_LABELS: Record<InitMode, string> = {
  parent: "start from the parent's weights",
  scratch: "from scratch",
};

/** A parent whose run finished: its trained weights can be inherited. */
export function parentFinished(state: State | null | undefined): boolean {
  return state === "done";
}

/** What an empty Epochs field means (the server's default; remap_tb/http_api.md, POST enqueue). */
export const EPOCHS_TITLE =
  "Epochs every child trains. Empty: the parent's epochs, or a third of them (rounded up) for a child that starts from its parent's weights";

/**
 * The note beside an empty Epochs field: with "start from the parent's weights" and a finished
 * parent, children train a third of the parent's epochs (the server's `epochs_from_parent`,
 * used only when they do start from its weights); "" once a number is typed (it applies to
 * every child) or when nothing is inherited.
 */
export function defaultEpochsNote(choice: InitMode, typed: boolean, finishedParents: boolean): string {
  if (typed || choice !== "parent" || !finishedParents) return "";
  return "empty: a third of the parent's epochs (rounded up), as they start from its weights";
}

/** The choice's default: the parent's weights when (one of) the parent(s) finished, else scratch. */
export function defaultInit(parentStates: (State | null | undefined)[]): InitMode {
  return parentStates.some(parentFinished) ? "parent" : "scratch";
}

/**
 * The `init` of one item: "scratch" when chosen; "parent" when chosen and the parent
 * finished (or its state is unknown here: the server falls back to scratch with a note);
 * "scratch" for a parent known not to have finished (nothing to inherit).
 */
export function itemInit(choice: InitMode, parentState: State | null | undefined): InitMode {
  if (choice === "scratch") return "scratch";
  if (parentState === null || parentState === undefined) return "parent";
  return parentFinished(parentState) ? "parent" : "scratch";
}

/** The items of POST enqueue for ticked candidates: with `init`, and `suggested` for suggested ones. */
export function candidateItems(
  chosen: Candidate[],
  origin: Origin,
  choice: InitMode,
  parentState: (run: string) => State | null | undefined = () => undefined,
): EnqueueItem[] {
  return chosen.map((c) => {
    const item: EnqueueItem = { spec: c.spec, parent: c.parent, origin, changes: c.changes, init: itemInit(choice, parentState(c.parent)) };
    if (c.suggested === true) item.suggested = true;
    return item;
  });
}

/** The editor's item: `init` only when the model has a parent. */
export function handcraftedItem(spec: EnqueueItem["spec"], parent: string | null, choice: InitMode, parentState: State | null | undefined): EnqueueItem {
  const item: EnqueueItem = { spec, parent, origin: "handcrafted" };
  if (parent) item.init = itemInit(choice, parentState);
  return item;
}

/**
 * The inspector's line: "initialised from RUN: 7 of 9 layers" (with "; 2 refitted to its outputs"
 * when layers were refitted by least squares to the parent's outputs; the run to link), "trained
 * from scratch", or null when there is nothing to say (an older server, a model not trained
 * yet, a model trained outside REMAP).
 */
export function initSummary(
  init: InitRecord | null | undefined,
  origin: Origin,
  state: State,
): { from: string | null; text: string } | null {
  if (init === undefined) return null;
  if (init) {
    const of = Number.isFinite(init.of) ? init.of : null;
    const n = Number.isFinite(init.layers) ? init.layers : null;
    const count = n === null ? "" : of === null ? `: ${n} layer${n === 1 ? "" : "s"}` : `: ${n} of ${of} layer${of === 1 ? "" : "s"}`;
    const refitted = init.refitted?.length ?? 0;
    const fitted = refitted ? `; ${refitted} refitted to its outputs` : "";
    return { from: init.from, text: `initialised from ${init.from}${count}${fitted}` };
  }
  if (origin === "external" || state === "queued" || state === "untrained") return null;
  return { from: null, text: "trained from scratch" };
}
