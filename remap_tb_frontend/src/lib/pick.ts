// Choosing among map points that overlap under the pointer.

/**
 * Which model a click on a stack of overlapping points means. `stack` holds the ids
 * under the pointer, nearest first. A plain click takes the nearest, or, when the
 * inspected model is in the stack, the next one (in a stable order), so repeated clicks
 * cycle through the stack. An additive (Shift) click takes the nearest point not yet
 * selected; when all are selected it takes the nearest (which toggles it off).
 */
export function chooseFromStack(stack: string[], inspected: string | null, selected: ReadonlySet<string>, additive: boolean): string | null {
  if (!stack.length) return null;
  if (additive) return stack.find((id) => !selected.has(id)) ?? stack[0];
  if (inspected === null || stack.length < 2 || !stack.includes(inspected)) return stack[0];
  const order = [...stack].sort();
  return order[(order.indexOf(inspected) + 1) % order.length];
}
