/**
 * Validates one manifest document (already parsed to plain data) and applies its defaults.
 *
 * Order: apiVersion and kind first (they select the schema), then the kind's JSON Schema, then
 * the checks a schema cannot express (checks.ts). Defaults are applied only to a valid document and
 * only afterwards (normalize.ts), so every problem refers to what the user wrote. Problems carry a
 * JSON pointer, not a position: the loader maps pointers to lines and columns.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import deploymentSchema from '../../schemas/deployment.schema.json' with { type: 'json' };
import serviceSchema from '../../schemas/service.schema.json' with { type: 'json' };
import namespaceSchema from '../../schemas/namespace.schema.json' with { type: 'json' };
import { checkDeployment, checkService } from './checks.ts';
import { normalizeDeployment, normalizeNamespace, normalizeService } from './normalize.ts';
import type { ManifestIssue } from './manifest-issue.ts';
import { escapePointerToken } from './pointer.ts';
import type { Deployment, Namespace, Service } from '../../schemas/generated/index.ts';
import { API_VERSION, DEFAULT_NAMESPACE, KINDS, type ManifestKind, type ManifestObject } from './types.ts';

export interface ValidationResult {
  /** The manifest with defaults applied, when there are no issues. */
  object?: ManifestObject;
  issues: ManifestIssue[];
}

// Compiled once: compiling is far slower than validating. allErrors so one run reports everything.
const ajv = new Ajv2020({
  allErrors: true,
  strict: true,
  // strictRequired rejects `if: { required: [image] }`, which names a property defined by the parent.
  strictRequired: false,
  // cpu and memory accept a string or a number.
  allowUnionTypes: true,
  // Adds parentSchema to errors: the known properties for "did you mean", descriptions for if/else.
  verbose: true,
});
const validators: Record<ManifestKind, ValidateFunction> = {
  Namespace: ajv.compile(namespaceSchema),
  Deployment: ajv.compile(deploymentSchema),
  Service: ajv.compile(serviceSchema),
};

/** Patterns of the schemas, explained; "must match pattern ^[a-z0-9]..." helps nobody. */
export const PATTERN_MESSAGES: Readonly<Record<string, string>> = {
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$':
    "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
  '^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$':
    "must be a label key: an optional DNS subdomain and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
  '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$':
    "must be a label value: letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
  '^[A-Za-z_][A-Za-z0-9_]*$': "must be letters, digits and '_', not starting with a digit",
  '^[0-9]+%$': 'must be a count or a percentage such as "25%"',
  '^[0-9]+(s|m|h)$': 'must be a duration such as "30s", "5m" or "1h"',
  '^([0-9]+m|[0-9]+(\\.[0-9]+)?)$': 'must be a cpu quantity such as "250m", "1" or "0.5"',
  '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$': 'must be a memory quantity such as "128974848", "64Mi" or "1G"',
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isKind(v: unknown): v is ManifestKind {
  return (KINDS as readonly unknown[]).includes(v);
}

/** Kind, namespace and name of a document as far as they can be told, for error messages. */
export function identityOf(doc: unknown): { kind?: ManifestKind; namespace?: string; name?: string } {
  if (!isRecord(doc) || !isKind(doc.kind)) return {};
  const metadata = isRecord(doc.metadata) ? doc.metadata : {};
  const name = typeof metadata.name === 'string' ? metadata.name : undefined;
  if (doc.kind === 'Namespace') return { kind: doc.kind, name };
  const namespace = metadata.namespace === undefined ? DEFAULT_NAMESPACE : metadata.namespace;
  return { kind: doc.kind, namespace: typeof namespace === 'string' ? namespace : undefined, name };
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The known property closest to a misspelled one, when it is close enough to be a typo. */
function suggestion(unknown: string, parentSchema: unknown): string | undefined {
  const known = isRecord(parentSchema) && isRecord(parentSchema.properties) ? Object.keys(parentSchema.properties) : [];
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = levenshtein(unknown.toLowerCase(), name.toLowerCase());
    if (distance <= Math.max(1, Math.floor(name.length / 3)) && (!best || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

function describeTypes(type: unknown): string {
  return Array.isArray(type) ? type.join(' or ') : String(type);
}

/** An ajv error as an issue with a readable message, or undefined for errors that only repeat others. */
function toIssue(e: ErrorObject): ManifestIssue | undefined {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    // Both only summarize the nested errors reported next to them.
    case 'if':
    case 'propertyNames':
      return undefined;
    case 'additionalProperties': {
      const property = String(params.additionalProperty);
      const near = suggestion(property, e.parentSchema);
      return {
        code: 'SCHEMA',
        pointer: e.instancePath,
        message: `must NOT have additional property ${JSON.stringify(property)}${near ? ` (did you mean "${near}"?)` : ''}`,
        at: { pointer: `${e.instancePath}/${escapePointerToken(property)}`, key: true },
      };
    }
  }
  let message: string;
  switch (e.keyword) {
    case 'required': {
      message = `must have required property '${String(params.missingProperty)}'`;
      // A requirement under if/else is conditional: say when it applies.
      const description = isRecord(e.parentSchema) ? e.parentSchema.description : undefined;
      if (/\/(then|else)\/required$/.test(e.schemaPath) && typeof description === 'string') message += ` (${description})`;
      break;
    }
    case 'enum':
      message = `must be equal to one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
      break;
    case 'const':
      message = `must be equal to ${JSON.stringify(params.allowedValue)}`;
      break;
    case 'type':
      message = `must be ${describeTypes(params.type)}`;
      break;
    case 'pattern':
      message = PATTERN_MESSAGES[String(params.pattern)] ?? e.message ?? 'is invalid';
      break;
    default:
      message = e.message ?? `is invalid (${e.keyword})`;
  }
  // Errors about a property name (propertyNames) point at that key.
  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
  if (propertyName !== undefined) {
    return {
      code: 'SCHEMA',
      pointer: e.instancePath,
      message: `key ${JSON.stringify(propertyName)} ${message}`,
      at: { pointer: `${e.instancePath}/${escapePointerToken(propertyName)}`, key: true },
    };
  }
  return { code: 'SCHEMA', pointer: e.instancePath, message };
}

function checkHeader(doc: Record<string, unknown>): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  if (doc.apiVersion === undefined) {
    issues.push({ code: 'UNKNOWN_API_VERSION', pointer: '', message: `must have required property 'apiVersion' ("${API_VERSION}")` });
  } else if (doc.apiVersion !== API_VERSION) {
    issues.push({
      code: 'UNKNOWN_API_VERSION',
      pointer: '/apiVersion',
      message: `unknown apiVersion ${JSON.stringify(doc.apiVersion)}; expected "${API_VERSION}"`,
    });
  }
  if (doc.kind === undefined) {
    issues.push({ code: 'UNKNOWN_KIND', pointer: '', message: `must have required property 'kind' (one of: ${KINDS.join(', ')})` });
  } else if (!isKind(doc.kind)) {
    issues.push({
      code: 'UNKNOWN_KIND',
      pointer: '/kind',
      message: `unknown kind ${JSON.stringify(doc.kind)}; known kinds: ${KINDS.join(', ')}`,
    });
  }
  return issues;
}

/** Validates one document; never throws. */
export function validateManifest(doc: unknown): ValidationResult {
  if (!isRecord(doc)) {
    const what = Array.isArray(doc) ? 'a sequence' : doc === null ? 'null' : `a ${typeof doc}`;
    return {
      issues: [{ code: 'SCHEMA', pointer: '', message: `a manifest must be a mapping with apiVersion, kind and metadata, not ${what}` }],
    };
  }
  const header = checkHeader(doc);
  // Without a known apiVersion and kind there is no schema to check the rest against.
  if (header.length > 0 || !isKind(doc.kind)) return { issues: header };

  const validate = validators[doc.kind];
  if (!validate(doc)) {
    const issues = (validate.errors ?? []).map(toIssue).filter((i): i is ManifestIssue => i !== undefined);
    return { issues };
  }
  if (doc.kind === 'Namespace') return { object: normalizeNamespace(doc as unknown as Namespace), issues: [] };
  if (doc.kind === 'Service') {
    const service = doc as unknown as Service;
    const serviceIssues = checkService(service);
    return serviceIssues.length > 0 ? { issues: serviceIssues } : { object: normalizeService(service), issues: [] };
  }

  const deployment = doc as unknown as Deployment;
  const issues = checkDeployment(deployment);
  return issues.length > 0 ? { issues } : { object: normalizeDeployment(deployment), issues: [] };
}
