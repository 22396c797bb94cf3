import { errorCodeEntry, type ErrorCode, type ErrorPolicy } from './codes.ts';

/**
 * The base of every error Gantry raises on purpose: a catalog `code` (which gives the HTTP status
 * and the handling policy) and serializable `data`, so an error can cross a process (a BullMQ job,
 * an HTTP reply) and come back as itself, as isomorphic-git's BaseError does.
 *
 * Messages and data must not hold secrets (tokens, credentialed URLs): they reach logs, events,
 * status and API replies. No raw `cause` is attached for the same reason: Node prints causes
 * verbatim, and a library's error can echo URLs and headers.
 */

/**
 * What toJSON() returns: `{ name, code, message, data }` for GantryError and its subclasses, except
 * ManifestError, which keeps its own flat shape (where `name` is the object's name), hence the
 * optional fields. fromJSON accepts either.
 */
export interface GantryErrorJSON {
  name?: string;
  code: string;
  message: string;
  data?: Record<string, unknown>;
}

type ErrorClass = abstract new (...args: never[]) => GantryError;

/** Classes fromJSON can bring back, by name. */
const errorClasses = new Map<string, ErrorClass>();

/**
 * Names a class on its prototype, not as a field: the stack header is formatted inside super(),
 * before fields exist. Also lets GantryError.fromJSON rebuild errors of that class, unless the
 * class has a JSON shape of its own (`revive: false`, ManifestError).
 */
export function registerErrorClass(cls: ErrorClass, name: string, opts: { revive?: boolean } = {}): void {
  Object.defineProperty(cls.prototype, 'name', { value: name, enumerable: false, writable: true, configurable: true });
  if (opts.revive !== false) errorClasses.set(name, cls);
}

export class GantryError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.data = data;
  }

  /** What to do about it: the code's catalog policy; `transient` for a code the catalog lacks. */
  get policy(): ErrorPolicy {
    return errorCodeEntry(this.code)?.policy ?? 'transient';
  }

  /** The status the API answers it with (from the catalog); 500 for a code the catalog lacks. */
  get httpStatus(): number {
    return errorCodeEntry(this.code)?.status ?? 500;
  }

  toJSON(): GantryErrorJSON {
    // Own fields only: JSON.stringify of an Error would otherwise drop message and name.
    return { name: this.name, code: this.code, message: this.message, data: this.data };
  }

  /**
   * The error `toJSON()` described, as an instance of its registered class (GantryError when the
   * name is not registered). The class constructor is not run, so any class comes back, whatever
   * its constructor's arguments; what a subclass derives lives in `data` for that reason.
   */
  static fromJSON(json: GantryErrorJSON): GantryError {
    const cls = (typeof json.name === 'string' && errorClasses.get(json.name)) || GantryError;
    // A real Error (with a stack), whose prototype is the class's.
    const err = Reflect.construct(Error, [json.message], cls) as GantryError;
    // The code is kept even when this build's catalog lacks it (an error from a newer version).
    const fields = err as unknown as { code: string; data: Record<string, unknown> };
    fields.code = json.code;
    fields.data = json.data !== null && typeof json.data === 'object' && !Array.isArray(json.data) ? json.data : {};
    return err;
  }
}
registerErrorClass(GantryError, 'GantryError');

export function isGantryError(err: unknown): err is GantryError {
  return err instanceof GantryError;
}

/** The policy any thrown value calls for: its own if it is a GantryError, else `transient`. */
export function policyOf(err: unknown): ErrorPolicy {
  return err instanceof GantryError ? err.policy : 'transient';
}
