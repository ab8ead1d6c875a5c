/** A promise queue: consumers await the next pushed value, or take one already waiting. */

/** Resolves with the next value pushed, or with one already waiting; `next` rejects after a timeout. */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((v: T) => void)[] = [];

  /** Hands `v` to the oldest waiter, or keeps it for the next `next()`. */
  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }

  /** The next value; rejects with an Error naming `what` after `timeoutMs`. */
  next(timeoutMs: number, what: string): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift() as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (x: T): void => {
        clearTimeout(timer);
        resolve(x);
      };
      this.waiters.push(done);
    });
  }

  /** Values waiting to be taken. */
  get size(): number {
    return this.items.length;
  }
}
