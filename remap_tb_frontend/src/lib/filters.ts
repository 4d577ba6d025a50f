// Map filters: parameter range, accuracy range, status, origin, layer types present.
// Filtered-out models stay on the map as faint points (context), but cannot be
// hovered, clicked or lassoed.

import type { ModelSummary, Origin, State } from "../types";
import { layerTypesOf } from "./layers";

export interface Filters {
  paramsMin: number | null;
  paramsMax: number | null;
  accMin: number | null; // fraction 0..1
  accMax: number | null;
  states: State[] | null; // null = any
  origins: Origin[] | null; // null = any
  layerTypes: string[]; // the model must contain every one of these types
}

export function emptyFilters(): Filters {
  return { paramsMin: null, paramsMax: null, accMin: null, accMax: null, states: null, origins: null, layerTypes: [] };
}

export function isFilterActive(f: Filters): boolean {
  return (
    f.paramsMin !== null ||
    f.paramsMax !== null ||
    f.accMin !== null ||
    f.accMax !== null ||
    f.states !== null ||
    f.origins !== null ||
    f.layerTypes.length > 0
  );
}

export function passesFilters(m: ModelSummary, f: Filters): boolean {
  if (f.paramsMin !== null && m.params < f.paramsMin) return false;
  if (f.paramsMax !== null && m.params > f.paramsMax) return false;
  if (f.accMin !== null || f.accMax !== null) {
    const a = m.val_accuracy;
    if (a === null) return false;
    if (f.accMin !== null && a < f.accMin) return false;
    if (f.accMax !== null && a > f.accMax) return false;
  }
  if (f.states !== null && !f.states.includes(m.status.state)) return false;
  if (f.origins !== null && !f.origins.includes(m.origin)) return false;
  if (f.layerTypes.length) {
    const types = layerTypesOf(m.glyph);
    for (const t of f.layerTypes) if (!types.has(t)) return false;
  }
  return true;
}

/** The ids of the models that pass. */
export function filterIds(models: ModelSummary[], f: Filters): Set<string> {
  const s = new Set<string>();
  for (const m of models) if (passesFilters(m, f)) s.add(m.id);
  return s;
}
