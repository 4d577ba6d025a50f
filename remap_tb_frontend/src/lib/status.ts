// What a model's training state means for what the dashboard can offer: export links
// (trained weights only for a finished run), the "nothing to show" texts of results that
// are computed when training finishes, and why a model has no position on a map.

import type { ExportFormat, ModelSummary, ProjectionKind, Status } from "../types";

/** How an unfinished run ended: "was cancelled", "failed", "diverged". */
function ended(s: Status): string {
  return s.state === "cancelled" ? "was cancelled" : s.state;
}

/** Why a model has no results that are computed at the end of training (null when done). */
export function unfinishedReason(s: Status): string | null {
  switch (s.state) {
    case "done":
      return null;
    case "untrained":
      return "the model was logged without training (untrained)";
    case "queued":
      return "the run has not started yet";
    case "running":
      return `the run is still training (epoch ${s.epoch} of ${s.epochs})`;
    default:
      return `the run ${ended(s)} at epoch ${s.epoch} of ${s.epochs}`;
  }
}

/** Why there are no trained weights to download (null when there are). */
export function weightsUnavailable(s: Status): string | null {
  if (s.state === "done" || s.state === "untrained") return null; // untrained: the weights as logged
  if (s.state === "queued" || s.state === "running") return `no trained weights yet: ${unfinishedReason(s)}`;
  return `no trained weights: the run ${ended(s)}`;
}

/** The text shown instead of a result (per-class accuracy, confusion matrix) that is missing. */
export function missingResultText(what: string, s: Status): string {
  switch (s.state) {
    case "done":
      return `No ${what} was recorded for this model.`;
    case "untrained":
      return `No ${what}: the model was logged without training (untrained), so it has no validation results.`;
    case "queued":
      return `No ${what} yet: the run has not started.`;
    case "running":
      return `No ${what} yet: not finished yet (epoch ${s.epoch} of ${s.epochs}); it is computed when training finishes.`;
    default:
      return `No ${what}: ${unfinishedReason(s)}; ${what} is computed when training finishes.`;
  }
}

export interface ExportLink {
  format: ExportFormat;
  label: string;
  /** The file name for the link's `download` attribute. */
  filename: string;
  /** Why the link is disabled (null = enabled). */
  disabled: string | null;
}

/** A file name made of safe characters only. */
export function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^\.+/, "_") || "model";
}

/** The export links of a model: spec and source for any model, weights only when done. */
export function exportLinks(id: string, s: Status): ExportLink[] {
  const base = safeFileName(id);
  return [
    { format: "json", label: "Spec (JSON)", filename: `${base}.json`, disabled: null },
    { format: "pytorch", label: "PyTorch source (.py)", filename: `${base}.py`, disabled: null },
    { format: "state_dict", label: s.state === "untrained" ? "Weights as logged (.pt)" : "Trained weights (.pt)", filename: `${base}.pt`, disabled: weightsUnavailable(s) },
  ];
}

/** Why models have no position on the map yet, as short phrases (empty when all have one). */
export function positionNotes(models: ModelSummary[], positions: Map<string, unknown>, kind: ProjectionKind, computing: boolean): string[] {
  let waiting = 0,
    never = 0,
    noAccuracy = 0,
    untrained = 0;
  for (const m of models) {
    if (positions.has(m.id)) continue;
    // Untrained (imported) models are on the structural maps only.
    if (m.status.state === "untrained" && (kind === "posthoc" || kind === "size")) {
      untrained++;
      continue;
    }
    // The prediction map only places models that have predictions, i.e. finished ones;
    // accuracy vs size needs a validation accuracy.
    if (kind === "posthoc" && m.status.state !== "done") never++;
    else if (kind === "size" && m.val_accuracy === null) noAccuracy++;
    else waiting++;
  }
  const out: string[] = [];
  if (waiting) out.push(computing ? `${waiting} waiting for the layout (computing the layout…)` : `${waiting} without a position yet`);
  else if (computing) out.push("updating the layout…");
  if (never) out.push(`${never} without predictions (not finished)`);
  if (noAccuracy) out.push(`${noAccuracy} without a validation accuracy yet`);
  if (untrained) out.push(`${untrained} untrained (structural maps only)`);
  return out;
}
