/**
 * Fan-out of "the branch may have moved" hints, shared by local and remote sources.
 * Hints are advisory, so a listener that throws is isolated rather than allowed to break
 * the watcher or timer that called it.
 */
export class Hints {
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  /** A call came after the burst's first: one more hint when the burst ends. */
  private trailing = false;

  get active(): boolean {
    return this.listeners.size > 0;
  }

  add(listener: () => void): void {
    this.listeners.add(listener);
  }

  emit(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch {
        // A faulty listener must not stop hints to the others; the periodic tick retries anyway.
      }
    }
  }

  /**
   * Emits at once for the first call of a burst, and once more `ms` after its last call: a commit
   * is acted on without waiting for the burst to end (a hint only makes the listener re-resolve,
   * so one that comes before the ref is written finds nothing new), and the burst's end is never
   * missed. Calls in between become that one trailing hint.
   */
  debounce(ms: number): void {
    const inBurst = this.debounceTimer !== undefined;
    clearTimeout(this.debounceTimer);
    if (!inBurst) this.emit();
    this.trailing = inBurst;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      if (this.trailing) this.emit();
      this.trailing = false;
    }, ms);
  }

  /**
   * Periodic hint. Unref'd: it must not keep a process alive on its own (the file watcher
   * or the service's server does that), and tests that forget close() still exit.
   */
  every(ms: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.emit(), ms);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.debounceTimer);
    this.timer = undefined;
    this.debounceTimer = undefined;
    this.listeners.clear();
  }
}
