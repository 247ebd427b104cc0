/**
 * The one timeout helper: rejects when `p` has not settled within `ms`. The operation itself may
 * linger (a hung Docker request, a slow file hash); the caller stops waiting for it. The timer is
 * cleared on settle, so it holds the process open at most `ms`, and only while someone waits.
 */
export async function withTimeout<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What `withTimeout` rejects with, so callers can tell a timeout from the operation's own error. */
export class TimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what} took longer than ${ms} ms`);
    this.name = 'TimeoutError';
  }
}
