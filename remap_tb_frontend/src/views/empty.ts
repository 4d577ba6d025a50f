// Empty states that say what to do next.

import { h, code } from "../lib/dom";

export function noRunsState(unreadable: { run: string; reason: string }[]): HTMLElement {
  return h(
    "div",
    { class: "rm-empty-big", "data-testid": "empty-state" },
    h(
      "div",
      {},
      h("h2", {}, "No REMAP models in this log directory yet"),
      h("p", {}, "Sample and train a first population of small CNNs (the dashboard fills in as they finish):"),
      h("p", {}, code("remap init runs/ --dataset digits --models 30 --epochs 10")),
      h("p", {}, "then run TensorBoard on that directory (it starts a local training worker): ", code("tensorboard --logdir runs/")),
      h("p", { class: "rm-muted" }, "Training needs a worker: TensorBoard starts one by default (", code("--remap_workers 1"), "), or run ", code("remap worker runs/"), " anywhere that sees the directory."),
      unreadable.length
        ? h(
            "div",
            { class: "rm-banner warn", "data-testid": "unreadable-runs" },
            h("b", {}, `${unreadable.length} run${unreadable.length === 1 ? "" : "s"} could not be read: `),
            unreadable
              .slice(0, 5)
              .map((u) => `${u.run} (${u.reason})`)
              .join("; "),
          )
        : null,
    ),
  );
}
