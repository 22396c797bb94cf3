import { InvalidArgumentError } from 'commander';
import { parseCpu, parseMemory } from '../reconciler/manifests/quantity.ts';
import { isValidName } from '../state/keys.ts';

/** Argument parsers for commander: each throws InvalidArgumentError, which exits 2 with one line. */

export function durationMs(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration such as 500ms, 10s, 5m or 1h, got ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
}

export function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port number 0-65535, got ${JSON.stringify(value)}`);
  return n;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

export function cpuMilli(value: string): number {
  try {
    const milli = parseCpu(/^\d+(\.\d+)?$/.test(value) ? Number(value) : value);
    if (milli <= 0) throw new Error('must be more than 0');
    return milli;
  } catch (err) {
    throw new InvalidArgumentError(`expected CPU cores such as 4, 0.5 or 500m, got ${JSON.stringify(value)}`);
  }
}

export function memoryBytes(value: string): number {
  try {
    const bytes = parseMemory(value);
    if (bytes <= 0) throw new Error('must be more than 0');
    return bytes;
  } catch {
    throw new InvalidArgumentError(`expected memory such as 8Gi, 512Mi or 1G, got ${JSON.stringify(value)}`);
  }
}

/** A size in bytes, with Kubernetes' suffixes (1Mi, 64Mi, 1Gi; plain digits are bytes). */
export function byteSize(value: string): number {
  try {
    const bytes = parseMemory(value);
    if (bytes <= 0 || !Number.isSafeInteger(bytes)) throw new Error('out of range');
    return bytes;
  } catch {
    throw new InvalidArgumentError(`expected a size such as 512Ki, 64Mi or 1Gi, got ${JSON.stringify(value)}`);
  }
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function labels(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (value.trim() === '') return out;
  for (const pair of value.split(',')) {
    const i = pair.indexOf('=');
    const k = i > 0 ? pair.slice(0, i).trim() : '';
    const v = i > 0 ? pair.slice(i + 1).trim() : '';
    if (!LABEL_KEY.test(k) || !LABEL_VALUE.test(v) || v.length > 63) throw new InvalidArgumentError(`expected labels as k=v,k2=v2, got ${JSON.stringify(pair)}`);
    out[k] = v;
  }
  return out;
}

export function nodeName(value: string): string {
  if (!isValidName(value)) {
    throw new InvalidArgumentError(`node names are DNS labels (lowercase letters, digits, '-'), got ${JSON.stringify(value)}`);
  }
  return value;
}

export function outputFormat(value: string): 'table' | 'wide' | 'json' | 'yaml' {
  if (value !== 'table' && value !== 'wide' && value !== 'json' && value !== 'yaml') throw new InvalidArgumentError(`expected table, wide, json or yaml, got ${JSON.stringify(value)}`);
  return value;
}
