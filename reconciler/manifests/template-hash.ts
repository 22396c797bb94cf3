/**
 * The identity of a deployment's pod template: it names revisions and instances
 * (`<ns>.<name>-<templateHash>-<ordinal>`), so any change to the template rolls the deployment and
 * nothing else does (replicas, strategy and metadata are outside the template).
 */
import { createHash } from 'node:crypto';
import type { Deployment } from '../../schemas/generated/index.ts';
import { normalizeDeployment } from './normalize.ts';

/**
 * JSON with object keys sorted at every level, so key order in the source never matters. Built as
 * one string without intermediate arrays: it hashes every template of every commit. The output is
 * the identity of revisions and instances, so it must never change (keys in UTF-16 code unit
 * order, undefined members left out, undefined array items written as null, as JSON.stringify does).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i] ?? null);
    return `${out}]`;
  }
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    let out = '{';
    let first = true;
    for (const key of Object.keys(record).sort()) {
      const v = record[key];
      if (v === undefined) continue;
      out += (first ? '' : ',') + JSON.stringify(key) + ':' + canonicalJson(v);
      first = false;
    }
    return `${out}}`;
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
