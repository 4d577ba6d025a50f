// Entry point. TensorBoard loads this ES module in the plugin's iframe
// (data/plugin_entry.html?name=remap, <base href="plugin/remap/">) and calls
// render() once. Everything is built into document.body; all URLs are relative.
//
// Test hooks (documented in README.md):
//   document.body.dataset.mapDrawn  performance.now() of the latest map draw
//   window.__remapPerf              { renderStart, firstDrawMs, draws, lastDrawMs,
//                                     lastAnimation: {frames, durationMs, fps}, lastHoverMs }
//   window.__remapMap.points()      [{id, x, y, r}] of visible map points, in the
//                                   frame's viewport (client) coordinates

import { App, markRenderStart } from "./app";
import { RemapClient } from "./client";
import { injectStyle } from "./style";

let app: App | null = null;

export function render(): void {
  markRenderStart();
  if (app) app.dispose();
  injectStyle(document);
  document.title = "REMAP";
  app = new App(document.body, new RemapClient());
  void app.start();
}
