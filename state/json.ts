/**
 * How every stored JSON value is read back. A value that is missing, empty or corrupt (a partial
 * write by hand, a bug in an older version) reads as absent, the same way everywhere: the owner of
 * that key rewrites it on its next pass, and no reader crashes or acts on half a record.
 */
export function parseStored<T>(raw: unknown): T | undefined {
  if (typeof raw !== 'string' || raw.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    return value !== null && typeof value === 'object' ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

/** parseStored over the values of a hash (HGETALL), leaving out those that do not parse. */
export function parseStoredHash<T>(all: Record<string, string>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [field, raw] of Object.entries(all)) {
    const v = parseStored<T>(raw);
    if (v !== undefined) out[field] = v;
  }
  return out;
}
