/**
 * Fan-out of "the branch may have moved" hints, shared by local and remote sources.
 * Hints are advisory, so a listener that throws is isolated rather than allowed to break
 * the watcher or timer that called it.
 */
export class Hints {
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;

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

  /** Emits once `ms` after the last call: bursts of ref-file events become one hint. */
  debounce(ms: number): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => this.emit(), ms);
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
