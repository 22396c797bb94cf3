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
import configMapSchema from '../../schemas/configmap.schema.json' with { type: 'json' };
import secretSchema from '../../schemas/secret.schema.json' with { type: 'json' };
import { checkDeployment, checkService, deploymentWarnings, serviceWarnings } from './checks.ts';
import { isInitRestartPolicy, sidecarIssues } from './init-containers.ts';
import { checkConfigData } from './config-checks.ts';
import { checkEnvSources } from './config-references.ts';
import { normalizeConfigMap, normalizeDeployment, normalizeNamespace, normalizeSecret, normalizeService } from './normalize.ts';
import type { ManifestIssue } from './manifest-issue.ts';
import { escapePointerToken } from './pointer.ts';
import type { ConfigMap, Deployment, Namespace, Secret, Service } from '../../schemas/generated/index.ts';
import { API_VERSIONS, DEFAULT_NAMESPACE, KINDS, LEGACY_API_VERSION, type ManifestKind, type ManifestObject } from './types.ts';
import { apiVersionsOf, closestName, kindsOf, kubernetesDefines, walkFields } from './kubernetes-fields.ts';
import type { ManifestWarningCode } from './warnings.ts';

export interface ValidationResult {
  /** The manifest with defaults applied, when there are no issues (and it is not ignored). */
  object?: ManifestObject;
  issues: ManifestIssue[];
  /** Accepted but worth saying: ignored fields, a deprecated apiVersion, the object itself ignored. */
  warnings: ValidationWarning[];
  /** The document is a kind Gantry lists but does not apply (or one skipped on request). */
  ignored?: boolean;
}

/** A warning located by pointer, as issues are; the loader adds file, line and column. */
export interface ValidationWarning {
  code: ManifestWarningCode;
  pointer: string;
  message: string;
  at?: { pointer: string; key: boolean };
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
const schemas: Record<ManifestKind, Record<string, unknown>> = {
  Namespace: namespaceSchema,
  ConfigMap: configMapSchema,
  Secret: secretSchema,
  Deployment: deploymentSchema,
  Service: serviceSchema,
};
const validators = Object.fromEntries(Object.entries(schemas).map(([k, s]) => [k, ajv.compile(s)])) as Record<ManifestKind, ValidateFunction>;

/** Patterns of the schemas, explained; "must match pattern ^[a-z0-9]..." helps nobody. */
export const PATTERN_MESSAGES: Readonly<Record<string, string>> = {
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$':
    "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
  '^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$':
    "must be a label key: an optional DNS subdomain and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
  '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$':
    "must be a label value: letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
  '^[A-Za-z_][A-Za-z0-9_]*$': "must be letters, digits and '_', not starting with a digit",
  '^[-._a-zA-Z][-._a-zA-Z0-9]*$': "must be letters, digits, '-', '.' and '_', not starting with a digit",
  '^[-._a-zA-Z0-9]+$': "must be letters, digits, '-', '.' and '_'",
  '^[A-Za-z0-9+/]*={0,2}$': 'must be base64 (the value is not shown)',
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$': "must be a DNS subdomain: DNS labels joined by '.'",
  "^(metadata\\.(name|namespace|uid)|metadata\\.(labels|annotations)\\['[^']+'\\]|spec\\.nodeName|status\\.(podIP|hostIP))$":
    "must be one of metadata.name, metadata.namespace, metadata.uid, metadata.labels['<key>'], metadata.annotations['<key>'], spec.nodeName, status.podIP, status.hostIP",
  // A downwardAPI volume's files: what a file can hold (no spec.nodeName or status.*, as in Kubernetes).
  "^(metadata\\.(name|namespace|uid|labels|annotations)|metadata\\.(labels|annotations)\\['[^']+'\\])$":
    "must be one of metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, metadata.labels['<key>'], metadata.annotations['<key>'] (a downwardAPI volume cannot hold spec.nodeName or status fields)",
  '^[0-9]+%$': 'must be a count or a percentage such as "25%"',
  '^[0-9]+(s|m|h)$': 'must be a duration such as "30s", "5m" or "1h"',
  '^([0-9]+m|[0-9]+(\\.[0-9]+)?)$': 'must be a cpu quantity such as "250m", "1" or "0.5"',
  '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$': 'must be a memory quantity such as "128974848", "64Mi" or "1G"',
  '^[-A-Za-z0-9]+$': "must be an HTTP header name: letters, digits and '-'",
  '^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$': 'must be an HTTP header value: no control characters (such as a newline) but tab',
  '^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$':
    "must be a host name (DNS labels joined by '.') or an IP address, without a port or brackets",
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isKind(v: unknown): v is ManifestKind {
  return (KINDS as readonly unknown[]).includes(v);
}

/**
 * Kind, namespace and name of a document as far as they can be told, for messages. Any kind: an
 * ignored ServiceAccount is named as precisely as a Deployment. Cluster-scoped kinds Gantry runs
 * (Namespace) have no namespace.
 */
export function identityOf(doc: unknown): { kind?: string; namespace?: string; name?: string } {
  if (!isRecord(doc) || typeof doc.kind !== 'string' || doc.kind === '') return {};
  const metadata = isRecord(doc.metadata) ? doc.metadata : {};
  const name = typeof metadata.name === 'string' ? metadata.name : undefined;
  if (doc.kind === 'Namespace') return { kind: doc.kind, name };
  const namespace = metadata.namespace === undefined ? DEFAULT_NAMESPACE : metadata.namespace;
  return { kind: doc.kind, namespace: typeof namespace === 'string' ? namespace : undefined, name };
}

/** The known property closest to a misspelled one, when it is close enough to be a typo. */
function suggestion(unknown: string, parentSchema: unknown): string | undefined {
  return closestName(unknown, isRecord(parentSchema) && isRecord(parentSchema.properties) ? Object.keys(parentSchema.properties) : []);
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

/** An object with this annotation set to "true" is listed as skipped and not read further. */
export const SKIP_ANNOTATION = 'gantry.dev/skip';
const SKIP_HINT = `list its file in .gantryignore, or annotate the object ${SKIP_ANNOTATION}: "true", to have Gantry skip it`;

type Header =
  | { run: ManifestKind; legacy: boolean }
  | { ignore: ValidationWarning }
  | { issues: ManifestIssue[] };

/** What apiVersion and kind make of a document: one Gantry runs, one it lists and ignores, or errors. */
function classify(doc: Record<string, unknown>): Header {
  const { apiVersion, kind } = doc;
  const metadata = isRecord(doc.metadata) ? doc.metadata : {};
  const annotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  const id = typeof apiVersion === 'string' && typeof kind === 'string' ? `${kind} (${apiVersion})` : 'object';
  if (annotations[SKIP_ANNOTATION] === 'true') {
    return { ignore: { code: 'SKIPPED', pointer: '', message: `skipped: ${id} annotated ${SKIP_ANNOTATION}: "true"` } };
  }
  const issues: ManifestIssue[] = [];
  if (apiVersion === undefined) issues.push({ code: 'UNKNOWN_API_VERSION', pointer: '', message: "must have required property 'apiVersion' (such as \"apps/v1\" or \"v1\")" });
  else if (typeof apiVersion !== 'string') issues.push({ code: 'UNKNOWN_API_VERSION', pointer: '/apiVersion', message: 'must be string' });
  if (kind === undefined) issues.push({ code: 'UNKNOWN_KIND', pointer: '', message: `must have required property 'kind' (Gantry runs ${KINDS.join(', ')})` });
  else if (typeof kind !== 'string') issues.push({ code: 'UNKNOWN_KIND', pointer: '/kind', message: 'must be string' });
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return { issues };

  if (isKind(kind)) {
    const expected = API_VERSIONS[kind];
    if (apiVersion === expected) return { run: kind, legacy: false };
    if (apiVersion === LEGACY_API_VERSION) return { run: kind, legacy: true };
    return { issues: [{ code: 'UNKNOWN_API_VERSION', pointer: '/apiVersion', message: `unknown apiVersion ${JSON.stringify(apiVersion)} for ${kind}; expected "${expected}"` }] };
  }
  if (apiVersion === LEGACY_API_VERSION) {
    return { issues: [{ code: 'UNKNOWN_KIND', pointer: '/kind', message: `unknown kind ${JSON.stringify(kind)} in ${LEGACY_API_VERSION} (deprecated), which has only ${KINDS.join(', ')}` }] };
  }
  if (kubernetesDefines(apiVersion, kind)) {
    return { ignore: { code: 'IGNORED_KIND', pointer: '', message: `ignored: Gantry does not run ${kind} (${apiVersion}); the object is listed, not applied` } };
  }
  const kinds = kindsOf(apiVersion);
  if (kinds) {
    const near = closestName(kind, kinds);
    return { issues: [{ code: 'UNKNOWN_KIND', pointer: '/kind', message: `Kubernetes defines no kind ${JSON.stringify(kind)} in ${apiVersion}${near ? ` (did you mean "${near}"?)` : ''}; ${SKIP_HINT}` }] };
  }
  const versions = apiVersionsOf(kind);
  if (versions.length > 0) {
    return { issues: [{ code: 'UNKNOWN_API_VERSION', pointer: '/apiVersion', message: `Kubernetes defines no apiVersion ${JSON.stringify(apiVersion)}; ${kind} is ${versions.map((v) => JSON.stringify(v)).join(' or ')}` }] };
  }
  return { issues: [{ code: 'UNKNOWN_KIND', pointer: '/kind', message: `${kind} (${apiVersion}) is not a kind Kubernetes defines (a typo, or a custom resource Gantry cannot run); ${SKIP_HINT}` }] };
}

/** Validates one document; never throws. */
export function validateManifest(doc: unknown): ValidationResult {
  if (!isRecord(doc)) {
    const what = Array.isArray(doc) ? 'a sequence' : doc === null ? 'null' : `a ${typeof doc}`;
    return {
      issues: [{ code: 'SCHEMA', pointer: '', message: `a manifest must be a mapping with apiVersion, kind and metadata, not ${what}` }],
      warnings: [],
    };
  }
  const header = classify(doc);
  if ('issues' in header) return { issues: header.issues, warnings: [] };
  if ('ignore' in header) return { issues: [], warnings: [header.ignore], ignored: true };

  const kind = header.run;
  const warnings: ValidationWarning[] = [];
  if (header.legacy) {
    warnings.push({ code: 'DEPRECATED_API_VERSION', pointer: '/apiVersion', message: `apiVersion "${LEGACY_API_VERSION}" is deprecated: write "${API_VERSIONS[kind]}", the Kubernetes apiVersion of ${kind} (read as that)` });
  }
  // Kubernetes' fields that Gantry does not honour are dropped with a warning; unknown ones are errors.
  const fields = walkFields(doc, `${API_VERSIONS[kind]}/${kind}`, schemas[kind]);
  // An init container's restartPolicy is dropped by the walker, but not ignorable: an error, not a warning (init-containers.ts).
  const sidecars = kind === 'Deployment' ? sidecarIssues(doc) : [];
  for (const f of fields.ignored) {
    if (kind === 'Deployment' && isInitRestartPolicy(f.pointer)) continue;
    warnings.push({ code: 'IGNORED_FIELD', pointer: f.pointer, message: f.message, at: { pointer: f.pointer, key: true } });
  }
  // Validated as the Kubernetes apiVersion, so the alias and the real one are one and the same object.
  const candidate = { ...fields.doc, apiVersion: API_VERSIONS[kind] };

  const validate = validators[kind];
  if (!validate(candidate)) {
    const issues = (validate.errors ?? []).map(toIssue).filter((i): i is ManifestIssue => i !== undefined);
    return { issues: [...fields.unknown, ...sidecars, ...issues], warnings };
  }
  if (fields.unknown.length > 0) return { issues: [...fields.unknown, ...sidecars], warnings };
  if (kind === 'Namespace') return { object: normalizeNamespace(candidate as unknown as Namespace), issues: [], warnings };
  if (kind === 'ConfigMap' || kind === 'Secret') {
    const configIssues = checkConfigData(candidate);
    if (configIssues.length > 0) return { issues: configIssues, warnings };
    const object = kind === 'ConfigMap' ? normalizeConfigMap(candidate as unknown as ConfigMap) : normalizeSecret(candidate as unknown as Secret);
    return { object, issues: [], warnings };
  }
  if (kind === 'Service') {
    const service = candidate as unknown as Service;
    const serviceIssues = checkService(service);
    warnings.push(...serviceWarnings(service));
    if (serviceIssues.length > 0) return { issues: serviceIssues, warnings };
    return { object: normalizeService(service), issues: [], warnings };
  }
  const deployment = candidate as unknown as Deployment;
  const issues = [...sidecars, ...checkDeployment(deployment), ...checkEnvSources(deployment)];
  warnings.push(...deploymentWarnings(deployment));
  return issues.length > 0 ? { issues, warnings } : { object: normalizeDeployment(deployment), issues: [], warnings };
}
