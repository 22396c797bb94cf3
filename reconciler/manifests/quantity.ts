/**
 * CPU and memory quantities as users write them in manifests, converted to the integers the
 * scheduler adds up (millicores and bytes).
 *
 * Parsing works on the decimal text, never on floats, so "0.29" is exactly 290m rather than
 * 290.00000000000006m; numbers are converted to their shortest decimal text first.
 */

const CPU_RE = /^(?:(\d+)m|(\d+)(?:\.(\d+))?)$/;
const MEMORY_RE = /^(\d+)(?:\.(\d+))?(Ki|Mi|Gi|Ti|k|M|G|T)?$/;

const MEMORY_FACTORS: Record<string, bigint> = {
  '': 1n,
  k: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  Ki: 1024n,
  Mi: 1024n ** 2n,
  Gi: 1024n ** 3n,
  Ti: 1024n ** 4n,
};

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** The decimal text of a quantity; numbers must be finite and non-negative. */
function quantityText(v: string | number, what: string): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new Error(`invalid ${what} quantity ${describe(v)}: must be a non-negative number`);
    return String(v);
  }
  if (typeof v !== 'string') throw new Error(`invalid ${what} quantity ${describe(v)}: must be a string or a number`);
  return v;
}

function toSafeNumber(n: bigint, v: string | number, what: string): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`invalid ${what} quantity ${describe(v)}: too large`);
  return Number(n);
}

/** CPU in millicores: "250m" -> 250, "1" -> 1000, 0.5 -> 500, "1.5" -> 1500. Throws on bad input. */
export function parseCpu(v: string | number): number {
  const text = quantityText(v, 'cpu');
  const m = CPU_RE.exec(text);
  if (!m) {
    throw new Error(`invalid cpu quantity ${describe(v)}: expected millicores such as "250m" or cores such as "1" or "0.5"`);
  }
  const [, milli, whole, fraction = ''] = m;
  if (milli !== undefined) return toSafeNumber(BigInt(milli), v, 'cpu');
  // Digits beyond the third decimal would be fractions of a millicore, which nothing can reserve.
  if (/[1-9]/.test(fraction.slice(3))) {
    throw new Error(`invalid cpu quantity ${describe(v)}: finer than 1m (one thousandth of a core)`);
  }
  const millis = BigInt(whole!) * 1000n + BigInt(fraction.slice(0, 3).padEnd(3, '0'));
  return toSafeNumber(millis, v, 'cpu');
}

/**
 * Memory in bytes: plain integers, binary suffixes Ki Mi Gi Ti (powers of 1024) and decimal
 * suffixes k M G T (powers of 1000), with an optional fraction ("1.5Gi") as long as the result is
 * a whole number of bytes. Throws on bad input.
 */
export function parseMemory(v: string | number): number {
  const text = quantityText(v, 'memory');
  const m = MEMORY_RE.exec(text);
  if (!m) {
    throw new Error(
      `invalid memory quantity ${describe(v)}: expected bytes such as "128974848", or a number with a suffix Ki, Mi, Gi, Ti, k, M, G or T such as "64Mi"`,
    );
  }
  const [, whole, fraction = '', suffix = ''] = m;
  const scale = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(whole!) * scale + BigInt(fraction || '0')) * MEMORY_FACTORS[suffix]!;
  if (scaled % scale !== 0n) throw new Error(`invalid memory quantity ${describe(v)}: not a whole number of bytes`);
  return toSafeNumber(scaled / scale, v, 'memory');
}

/** Millicores for display, in a form parseCpu reads back: 250 -> "250m", 1000 -> "1", 1500 -> "1.5". */
export function formatCpu(milli: number): string {
  if (!Number.isSafeInteger(milli) || milli < 0) return String(milli);
  if (milli < 1000 && milli !== 0) return `${milli}m`;
  const cores = Math.floor(milli / 1000);
  const rest = milli % 1000;
  return rest === 0 ? String(cores) : `${cores}.${String(rest).padStart(3, '0').replace(/0+$/, '')}`;
}

const BINARY_UNITS = ['Ti', 'Gi', 'Mi', 'Ki'] as const;
const DECIMAL_UNITS = ['T', 'G', 'M', 'k'] as const;

/**
 * Bytes for display: exact with the largest binary ("64Mi") or else decimal ("1G") suffix that
 * divides the value, otherwise rounded to one decimal in the largest binary unit ("117.7Mi").
 * Only the exact forms read back with parseMemory to the same number.
 */
export function formatMemory(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) return String(bytes);
  if (bytes === 0) return '0';
  for (const unit of [...BINARY_UNITS, ...DECIMAL_UNITS]) {
    const factor = Number(MEMORY_FACTORS[unit]);
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  for (const unit of BINARY_UNITS) {
    const factor = Number(MEMORY_FACTORS[unit]);
    if (bytes >= factor) return `${(bytes / factor).toFixed(1)}${unit}`;
  }
  return String(bytes);
}
