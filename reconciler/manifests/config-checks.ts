/**
 * What the ConfigMap and Secret schemas cannot say: base64 that decodes, a key in two maps, and
 * Kubernetes' 1 MiB limit on an object's data. Messages name keys, never values (a Secret's value
 * must not reach an error, a status or a log).
 */
import type { ManifestIssue } from './manifest-issue.ts';
import { escapePointerToken } from './pointer.ts';

/** Kubernetes' limit on the data of one ConfigMap or Secret. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

const isRecord = (v: unknown): v is Record<string, string> => v !== null && typeof v === 'object' && !Array.isArray(v);

function base64Issues(map: unknown, field: string): ManifestIssue[] {
  if (!isRecord(map)) return [];
  const issues: ManifestIssue[] = [];
  for (const [key, value] of Object.entries(map)) {
    // The schema's pattern checks the alphabet; a length that is not a multiple of 4 is truncated.
    if (value.length % 4 !== 0) issues.push({ code: 'INVALID_VALUE', pointer: `/${field}/${escapePointerToken(key)}`, message: 'must be base64: its length is not a multiple of 4 (the value is not shown)' });
  }
  return issues;
}

/** Checks a schema-valid ConfigMap or Secret document. */
export function checkConfigData(doc: Record<string, unknown>): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const kind = doc.kind;
  const encoded = kind === 'Secret' ? ['data'] : ['binaryData'];
  for (const field of encoded) issues.push(...base64Issues(doc[field], field));
  const maps = kind === 'Secret' ? ['data', 'stringData'] : ['data', 'binaryData'];
  if (kind === 'ConfigMap' && isRecord(doc.data) && isRecord(doc.binaryData)) {
    for (const key of Object.keys(doc.binaryData)) {
      if (key in doc.data) issues.push({ code: 'INVALID_VALUE', pointer: `/binaryData/${escapePointerToken(key)}`, message: `key ${JSON.stringify(key)} is in both data and binaryData`, at: { pointer: `/binaryData/${escapePointerToken(key)}`, key: true } });
    }
  }
  let bytes = 0;
  for (const field of maps) {
    const map = doc[field];
    if (!isRecord(map)) continue;
    for (const [key, value] of Object.entries(map)) bytes += key.length + (encoded.includes(field) ? Math.floor((value.length * 3) / 4) : Buffer.byteLength(value));
  }
  if (bytes > MAX_CONFIG_BYTES) issues.push({ code: 'INVALID_VALUE', pointer: '', message: `its data is ${bytes} bytes, more than Kubernetes' limit of 1 MiB per ${String(kind)}` });
  return issues;
}
