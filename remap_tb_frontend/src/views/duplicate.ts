// A duplicate message that names the existing model and links to it (issue 11): a click
// inspects the model (and shows it on the map). Shared by the generate panel, the editor
// and every enqueue error.

import type { ModelSummary } from "../types";
import { h } from "../lib/dom";

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
