/**
 * Runs async functions one at a time per key, in call order; different keys run concurrently.
 * The agent uses it so that a job, the resync timer and a process exit never handle the same
 * instance at once.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => done);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      // Forget the key once nobody queued behind us, so the map does not grow with every id ever seen.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
