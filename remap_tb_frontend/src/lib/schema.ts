// Helpers over the server's layer schema (GET schema): what a new layer of a type
// starts with, and how each field is edited. The schema itself is never copied
// here; validation is always the server's (POST validate).

import type { Layer, SchemaField, SchemaResponse } from "../types";

/**
 * Starting values for required fields that have no default in the schema: a
 * small, common choice per field name (a presentation choice, not a rule).
 * Used only when the value fits the field's limits.
 */
const STARTERS: Record<string, number | string> = {
  filters: 16,
  kernel_size: 3,
  pool_size: 2,
  units: 64,
  fn: "relu",
  rate: 0.25,
};

type Value = number | string | boolean;

/** Does `v` lie within the field's limits (and choices)? A "padding" is one of its choices or a whole number >= min. */
export function fitsField(f: SchemaField, v: Value): boolean {
  if (f.kind === "bool") return typeof v === "boolean";
  if (f.kind === "choice") return typeof v === "string" && (f.choices ?? []).includes(v);
  if (f.kind === "padding") {
    if (typeof v === "string") return (f.choices ?? []).includes(v);
    if (typeof v !== "number" || !Number.isInteger(v)) return false;
    return (f.min === null || v >= f.min) && (f.max === null || (f.max_inclusive ? v <= f.max : v < f.max));
  }
  if (typeof v !== "number" || !Number.isFinite(v)) return false;
  if (f.kind === "int" && !Number.isInteger(v)) return false;
  if (f.min !== null && v < f.min) return false;
  if (f.max !== null && (f.max_inclusive ? v > f.max : v >= f.max)) return false;
  return true;
}

/** The value a new layer starts with for a required field (undefined for optional ones). */
export function starterValue(f: SchemaField): Value | undefined {
  if (!f.required) return undefined;
  if (f.default !== null && fitsField(f, f.default)) return f.default;
  const s = STARTERS[f.name];
  if (s !== undefined && fitsField(f, s)) return s;
  if (f.kind === "bool") return true;
  if (f.kind === "choice" || (f.kind === "padding" && f.choices?.length)) return f.choices?.[0];
  if (f.min !== null) {
    const v = f.kind === "int" ? Math.ceil(f.min) : f.min;
    if (fitsField(f, v)) return v;
  }
  return f.kind === "int" ? 1 : 0;
}

/** A new layer of `type`: required fields at a starting value, optional ones left to the server's defaults. */
export function newLayer(schema: SchemaResponse, type: string): Layer {
  const layer: Layer = { type };
  for (const f of schema.fields[type] ?? []) {
    const v = starterValue(f);
    if (v !== undefined) layer[f.name] = v;
  }
  return layer;
}

/** How an optional field's default reads in an empty input: "default 1", "default = pool_size". */
export function defaultText(f: SchemaField): string {
  if (f.default === null) return "default";
  if (typeof f.default === "string" && !(f.choices ?? []).includes(f.default)) return `default = ${f.default}`;
  return `default ${f.default}`;
}

/** The short grey hint of an empty optional input: "1", "= pool" (the full text is defaultText). */
export function placeholderText(f: SchemaField): string {
  if (f.required) return "";
  if (f.default === null) return "default";
  if (typeof f.default === "string" && !(f.choices ?? []).includes(f.default)) return `= ${fieldLabel(f.default)}`;
  return String(f.default);
}

/**
 * The value an edited input means for a field: "" = unset (the server's default);
 * numbers for numeric fields and for a "padding" that reads as a whole number.
 */
export function parseFieldInput(f: SchemaField, raw: string): Value | undefined {
  const t = raw.trim();
  if (t === "") return undefined;
  if (f.kind === "choice") return t;
  if (f.kind === "bool") return t === "true";
  if (f.kind === "padding" && (f.choices ?? []).includes(t)) return t;
  const v = Number(t);
  return Number.isFinite(v) ? v : t;
}

/** Step of a numeric input for the field. */
export function fieldStep(f: SchemaField): number {
  if (f.kind === "int" || f.kind === "padding") return 1;
  const span = f.min !== null && f.max !== null ? f.max - f.min : 1;
  return span <= 1 ? 0.05 : span <= 10 ? 0.1 : 1;
}

/** A short label for a field input ("kernel_size" -> "kernel"). */
export function fieldLabel(name: string): string {
  return name.replace(/_size$/, "");
}

/** Is `type` a layer type the schema knows? */
export function knowsType(schema: SchemaResponse | null, type: string): boolean {
  return !!schema && schema.layer_types.includes(type) && !!schema.fields[type];
}
