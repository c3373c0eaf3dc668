// Layers report what happens as typed events through a sink they are given,
// never by printing (style.md, "Emit events, don't print"); each layer
// defines its own event union and the scheduler unions them.

/** Where a layer sends its events. A sink must not throw. */
export type EventSink<E> = (event: E) => void;

/** A sink that drops everything (the default when a caller passes none). */
export function ignoreEvents(): void {
  // nothing
}
