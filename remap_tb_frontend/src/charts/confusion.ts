// Confusion matrix (rows = true class, columns = predicted), coloured by the
// row-normalised rate; the diagonal in blue, errors in orange.

import { h, s, clear } from "../lib/dom";

export class ConfusionChart {
  private readonly root: HTMLElement;

  constructor(container: HTMLElement) {
    this.root = h("div", { class: "rm-confusion", "data-testid": "confusion" });
    container.appendChild(this.root);
  }

  update(d: { matrix: number[][] | null; classNames: string[]; emptyText?: string }): void {
    clear(this.root);
    const m = d.matrix;
    if (!m || !m.length) {
      this.root.appendChild(h("div", { class: "rm-muted rm-small" }, d.emptyText ?? "No confusion matrix yet."));
      return;
    }
    const n = m.length;
    const cell = Math.max(4, Math.min(26, Math.floor(300 / n)));
    // Room for the labels: row names on the left, column names rotated on top.
    let longest = 1;
    for (let i = 0; i < n; i++) longest = Math.max(longest, Math.min(10, (d.classNames[i] ?? String(i)).length));
    const labels = cell >= 9;
    const left = labels ? 10 + longest * 6 : 4,
      top = labels ? 10 + Math.ceil(longest * 6 * 0.87) : 4;
    const W = left + n * cell + 2,
      H = top + n * cell + 2;
    const svg = s("svg", { width: W, height: H });
    const showText = cell >= 20;
    for (let i = 0; i < n; i++) {
      const row = m[i];
      const total = row.reduce((a, b) => a + b, 0) || 1;
      const name = d.classNames[i] ?? String(i);
      if (labels) {
        svg.appendChild(s("text", { x: left - 4, y: top + i * cell + cell / 2 + 4, "text-anchor": "end", "font-size": 10, fill: "#616161" }, name.slice(0, 10)));
        svg.appendChild(
          s("text", { x: 0, y: 0, transform: `translate(${left + i * cell + cell / 2 + 3},${top - 4}) rotate(-60)`, "font-size": 10, fill: "#616161" }, name.slice(0, 10)),
        );
      }
      for (let j = 0; j < n; j++) {
        const v = row[j] ?? 0;
        const rate = v / total;
        const base = i === j ? "21,101,192" : "245,124,0";
        const alpha = v === 0 ? 0 : 0.08 + 0.92 * Math.sqrt(rate);
        const r = s("rect", {
          x: left + j * cell,
          y: top + i * cell,
          width: cell - 1,
          height: cell - 1,
          fill: v === 0 ? "#fafafa" : `rgba(${base},${alpha.toFixed(3)})`,
        });
        r.appendChild(s("title", {}, `true ${name}, predicted ${d.classNames[j] ?? j}: ${v} (${(rate * 100).toFixed(1)}% of the row)`));
        svg.appendChild(r);
        if (showText && v > 0)
          svg.appendChild(
            s("text", { x: left + j * cell + cell / 2 - 0.5, y: top + i * cell + cell / 2 + 3.5, "text-anchor": "middle", "font-size": 9, fill: alpha > 0.55 ? "#fff" : "#424242", "pointer-events": "none" }, String(v)),
          );
      }
    }
    this.root.appendChild(svg);
    this.root.appendChild(h("div", { class: "rm-help" }, "Rows: true class; columns: predicted. Blue = correct, orange = confusions (shade = share of the row)."));
  }

  dispose(): void {
    this.root.remove();
  }
}
