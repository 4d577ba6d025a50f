// The right-hand tab strip. Each tab owns a panel element; the app fills them.

import { h } from "../lib/dom";

export type TabName = "inspector" | "compare" | "generate" | "editor" | "queue" | "classes";

export const TAB_LABELS: Record<TabName, string> = {
  inspector: "Inspector",
  compare: "Compare",
  generate: "Generate",
  editor: "Editor",
  queue: "Queue",
  classes: "Classes",
};

export class Tabs {
  readonly panels = new Map<TabName, HTMLElement>();
  private readonly buttons = new Map<TabName, HTMLButtonElement>();
  private readonly badges = new Map<TabName, HTMLElement>();
  private current: TabName;

  constructor(
    container: HTMLElement,
    names: TabName[],
    private readonly onChange: (t: TabName) => void,
  ) {
    const strip = h("div", { class: "rm-tabs", role: "tablist" });
    container.appendChild(strip);
    for (const n of names) {
      const badge = h("span", { class: "badge", style: "display:none" });
      const b = h("button", { role: "tab", "data-testid": `tab-${n}`, "data-tab": n }, TAB_LABELS[n], badge);
      b.addEventListener("click", () => this.select(n));
      strip.appendChild(b);
      this.buttons.set(n, b);
      this.badges.set(n, badge);
      const panel = h("div", { class: "rm-tabpanel", role: "tabpanel", "data-panel": n, style: "display:none" });
      container.appendChild(panel);
      this.panels.set(n, panel);
    }
    this.current = names[0];
    this.select(names[0], true);
  }

  get active(): TabName {
    return this.current;
  }

  select(n: TabName, silent = false): void {
    const changed = n !== this.current;
    this.current = n;
    for (const [k, b] of this.buttons) {
      b.classList.toggle("on", k === n);
      b.setAttribute("aria-selected", String(k === n));
      this.panels.get(k)!.style.display = k === n ? "" : "none";
    }
    if (!silent && changed) this.onChange(n);
  }

  badge(n: TabName, text: string | null): void {
    const b = this.badges.get(n)!;
    b.textContent = text ?? "";
    b.style.display = text ? "" : "none";
  }
}
