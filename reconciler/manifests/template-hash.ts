/**
 * The identity of a deployment's pod template: it names revisions and instances
 * (`<ns>.<name>-<templateHash>-<ordinal>`), so any change to the template rolls the deployment and
 * nothing else does (replicas, strategy and metadata are outside the template).
 */
import { createHash } from 'node:crypto';
import type { Deployment } from '../../schemas/generated/index.ts';
import { normalizeDeployment } from './normalize.ts';

/** JSON with object keys sorted at every level, so key order in the source never matters. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * First 10 hex characters of the SHA-256 of the canonical JSON of `spec.template`, defaults
 * applied: writing a default out (`args: []`) or leaving it implicit gives the same hash.
 * Accepts a loaded DeploymentObject or any schema-valid Deployment.
 */
export function templateHash(deployment: Deployment): string {
  const template = normalizeDeployment(deployment).spec.template;
  return createHash('sha256').update(canonicalJson(template)).digest('hex').slice(0, 10);
}
