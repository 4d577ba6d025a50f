// Server and client errors, shown as dismissable banners (never swallowed).
// The same message shown again bumps a counter instead of stacking.

import { h } from "../lib/dom";

export class ErrorBanners {
  private readonly root: HTMLElement;
  private readonly shown = new Map<string, { el: HTMLElement; count: number; countEl: HTMLElement }>();

  constructor(container: HTMLElement) {
    this.root = h("div", { class: "rm-errors", "data-testid": "errors", role: "alert" });
    container.appendChild(this.root);
  }

  /** A warning (something to know, not a failure). */
  warn(message: string, context?: string): void {
    this.show(message, context, "warn");
  }

  show(message: string, context?: string, level: "err" | "warn" = "err"): void {
    const text = context ? `${context}: ${message}` : message;
    const existing = this.shown.get(text);
    if (existing) {
      existing.count++;
      existing.countEl.textContent = ` (×${existing.count})`;
      return;
    }
    const countEl = h("span", { class: "rm-small" });
    const close = h("button", { title: "Dismiss", "aria-label": "Dismiss" }, "✕");
    const el = h("div", { class: `rm-banner ${level}`, "data-testid": level === "err" ? "error-banner" : "warning-banner" }, h("div", { style: "flex:1" }, text, countEl), close);
    close.addEventListener("click", () => this.dismiss(text));
    this.shown.set(text, { el, count: 1, countEl });
    this.root.appendChild(el);
    if (level === "warn") window.setTimeout(() => this.dismiss(text), 15000);
  }

  dismiss(text: string): void {
    const e = this.shown.get(text);
    if (!e) return;
    e.el.remove();
    this.shown.delete(text);
  }

  dispose(): void {
    this.root.remove();
  }
}
