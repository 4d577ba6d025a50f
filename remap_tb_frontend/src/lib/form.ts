// Form fields: whole numbers within limits, with messages that use the field names the
// user sees, and server errors rephrased with those names.

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** A whole number from lo to hi (empty -> `empty`); the error names the field. */
export function intField(label: string, raw: string, lo: number, hi: number | null, empty: number | null): Parsed<number | null> {
  const t = raw.trim();
  if (t === "") return { ok: true, value: empty };
  const v = Number(t);
  const range = hi === null ? `${lo.toLocaleString("en-US")} or more` : `from ${lo.toLocaleString("en-US")} to ${hi.toLocaleString("en-US")}`;
  if (!Number.isFinite(v) || !Number.isInteger(v) || v < lo || (hi !== null && v > hi)) return { ok: false, error: `${label}: enter a whole number ${range} (got ${t}).` };
  return { ok: true, value: v };
}

/** Request fields (as the server names them) -> the labels of the inputs that set them. */
export const FIELD_LABELS: Record<string, string> = {
  "options.count": "Children",
  "options.max_changes": "Changes per child",
  "options.change_types": "Change types",
  "options.seed": "Seed",
  "options.layers": "Layers to touch",
  "constraints.min_params": "Parameters",
  "constraints.max_params": "Parameters",
  "constraints.max_depth": "Max depth",
  "constraints.allowed_types": "Allowed layers",
  "training.epochs": "Epochs",
  epochs: "Epochs",
  parents: "Around",
};

/** The server's message, prefixed with the label of the field it is about ("Children: options.count must …"). */
export function explainServerError(message: string): string {
  const m = /\b(options\.\w+|constraints\.\w+|training\.epochs|epochs|parents)\b/.exec(message);
  const label = m ? FIELD_LABELS[m[1]] : undefined;
  return label && !message.startsWith(`${label}:`) ? `${label}: ${message}` : message;
}
