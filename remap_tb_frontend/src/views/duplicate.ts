// A duplicate message that names the existing model and links to it (issue 11): a click
// inspects the model (and shows it on the map). Shared by the generate panel, the editor
// and every enqueue error.

import type { ModelSummary } from "../types";
import { h } from "../lib/dom";
import { groupDuplicates, resolveDuplicate } from "../lib/duplicate";

/** A link to the model a duplicate duplicates: "same model as v-12 (inspect)". */
export function duplicateLink(model: ModelSummary, onInspect: (id: string) => void): HTMLElement {
  const a = h("a", { class: "rm-dup-link", href: "#", "data-testid": "duplicate-link", "data-model-id": model.id, title: `Inspect ${model.id}, the existing model` }, model.id);
  a.addEventListener("click", (e) => {
    e.preventDefault();
    e.stopPropagation();
    onInspect(model.id);
  });
  return a;
}

/** The message, then "— the existing model: <link>" (the link alone when the message already names it). */
export function withDuplicateLink(text: string, model: ModelSummary | null, onInspect: (id: string) => void): (string | HTMLElement)[] {
  if (!model) return [text];
  const named = text.includes(model.id);
  return [text.replace(/[.\s]+$/, ""), named ? " — inspect " : " — the existing model: ", duplicateLink(model, onInspect)];
}

/** A model a duplicate names: a link when it is loaded here, else its id (e.g. a queued request). */
export function duplicateRef(id: string, models: ModelSummary[], onInspect: (id: string) => void): HTMLElement {
  const m = resolveDuplicate(id, models);
  return m ? duplicateLink(m, onInspect) : h("b", { "data-testid": "duplicate-id", title: "A queued request, not on the map yet" }, id);
}

/**
 * A note for the `duplicates` of an answer, null when there are none: enqueue's exact repeats
 * ("1 item is the same model as v-3 (queued anyway)") or generate's left-out variation draws
 * ("2 draws were the same model as v-3 and were left out"), each model linked.
 */
export function duplicatesNote(
  entries: readonly { duplicate_of: string | null; count?: number }[] | null | undefined,
  kind: "enqueue" | "generate",
  models: ModelSummary[],
  onInspect: (id: string) => void,
  testid: string,
): HTMLElement | null {
  const groups = groupDuplicates(entries);
  if (!groups.length) return null;
  const parts: (string | HTMLElement)[] = [];
  for (const g of groups) {
    const one = g.count === 1;
    if (kind === "enqueue") parts.push(`${g.count} item${one ? " is" : "s are"} the same model as `, duplicateRef(g.id, models, onInspect), " (queued anyway: training a model again is allowed). ");
    else parts.push(`${g.count} draw${one ? " was" : "s were"} the same model as `, duplicateRef(g.id, models, onInspect), " and left out. ");
  }
  return h("div", { class: "rm-banner warn", "data-testid": testid, "data-duplicate-of": groups.map((g) => g.id).join(",") }, ...parts);
}
