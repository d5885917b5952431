/**
 * Wait for the next event of a kind, with a deadline; failing with what never
 * came. No sleeps as synchronisation.
 */
export interface EventSource<E> {
  on(listener: (event: E) => void): () => void;
}

export function nextEvent<E extends { kind: string }, K extends E["kind"]>(
  source: EventSource<E>,
  kind: K,
  opts: { within: number; where?: (event: Extract<E, { kind: K }>) => boolean },
): Promise<Extract<E, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(
        new Error(
          `no "${kind}" event${opts.where ? " matching the condition" : ""} within ${opts.within} ms`,
        ),
      );
    }, opts.within);
    const off = source.on((event) => {
      if (event.kind !== kind) return;
      const e = event as Extract<E, { kind: K }>;
      if (opts.where && !opts.where(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

/**
 * Poll `check` until it returns (or resolves to) true, failing after
 * `within` ms with `what`. For state with no event, or one read over HTTP.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  within: number,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + within;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not true within ${within} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `promise`, or a rejection naming `what` if it has not settled within `within` ms. */
export function deadline<T>(promise: Promise<T>, within: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${within} ms`)), within);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
