// Polling for a condition that has no event to wait on (a log line, a /ready reply).

/** Polls `pred` every 100 ms until it holds; throws, naming `what`, after `ms`. */
export async function until(
  what: string,
  pred: () => boolean | Promise<boolean>,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
