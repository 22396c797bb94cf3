/**
 * Kubernetes' field set against what Gantry honours. A document is walked along two trees at once:
 * Kubernetes' types (kubernetes/fields.generated.ts, from kubernetes-types) and the kind's JSON
 * Schema in schemas/ (what Gantry implements). At every key:
 *   - in Gantry's schema: kept, and walked further;
 *   - only in Kubernetes: a warning ("ignored: Gantry does not implement /spec/.../affinity") and
 *     dropped from the copy that is validated, so manifests written for Kubernetes load as they are;
 *   - in neither: an error, as kubectl's strict field validation (with "did you mean").
 * Where Gantry extends Kubernetes (a Canary strategy, `rollback`) there is no Kubernetes type to
 * walk: Gantry's schema alone decides, and its own additionalProperties errors apply.
 * Pure: no I/O.
 */
import { KUBERNETES_KINDS, KUBERNETES_ROOTS, KUBERNETES_TYPES, type FieldType } from './kubernetes/fields.generated.ts';
import type { ManifestIssue } from './manifest-issue.ts';
import { escapePointerToken } from './pointer.ts';

type Schema = Record<string, unknown>;

export interface FieldWalkResult {
  /** The document without the fields Gantry does not honour nor Kubernetes define. */
  doc: Record<string, unknown>;
  /** One per field Kubernetes defines and Gantry ignores. */
  ignored: { pointer: string; message: string }[];
  /** One per field Kubernetes does not define. */
  unknown: ManifestIssue[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Whether Kubernetes defines `kind` in `apiVersion` (any kind, run by Gantry or not). */
export function kubernetesDefines(apiVersion: string, kind: string): boolean {
  return KUBERNETES_KINDS[apiVersion]?.includes(kind) ?? false;
}

/** The apiVersions in which Kubernetes defines `kind`. */
export function apiVersionsOf(kind: string): string[] {
  return Object.keys(KUBERNETES_KINDS).filter((v) => KUBERNETES_KINDS[v]!.includes(kind));
}

/** Every kind Kubernetes defines in `apiVersion`, or undefined for an apiVersion it does not know. */
export function kindsOf(apiVersion: string): readonly string[] | undefined {
  return KUBERNETES_KINDS[apiVersion];
}

/**
 * Resolves local `$ref`s and gathers `properties` from the branches a schema may combine. Both
 * are remembered per schema node: the schemas never change, and a walk asks the same nodes for
 * every document (10,000 deployments spent 15% of a cold load resolving the same refs).
 */
class SchemaView {
  private readonly resolved = new Map<unknown, Schema | undefined>();
  private readonly gathered = new Map<Schema, Map<string, unknown>>();

  constructor(private readonly root: Schema) {}

  resolve(node: unknown): Schema | undefined {
    if (!isRecord(node)) return undefined;
    let known = this.resolved.get(node);
    if (known === undefined && !this.resolved.has(node)) this.resolved.set(node, (known = this.resolveRefs(node)));
    return known;
  }

  private resolveRefs(node: Schema): Schema | undefined {
    let n: unknown = node;
    for (let i = 0; i < 32 && isRecord(n) && typeof n.$ref === 'string'; i++) {
      const path = n.$ref.replace(/^#\//, '').split('/');
      let target: unknown = this.root;
      for (const part of path) target = isRecord(target) ? target[part] : undefined;
      // Keywords beside a $ref (a default, a description) do not change the shape.
      n = target;
    }
    return isRecord(n) ? n : undefined;
  }

  /** Named properties, from the node and from if/then/else, allOf, anyOf and oneOf branches. */
  properties(node: Schema): ReadonlyMap<string, unknown> {
    let known = this.gathered.get(node);
    if (!known) this.gathered.set(node, (known = this.gather(node)));
    return known;
  }

  private gather(node: Schema): Map<string, unknown> {
    const out = new Map<string, unknown>();
    const add = (s: Schema | undefined) => {
      if (!s) return;
      if (isRecord(s.properties)) for (const [k, v] of Object.entries(s.properties)) if (!out.has(k)) out.set(k, v);
      for (const branch of ['then', 'else']) add(this.resolve(s[branch]));
      for (const list of ['allOf', 'anyOf', 'oneOf']) if (Array.isArray(s[list])) for (const b of s[list] as unknown[]) add(this.resolve(b));
    };
    add(node);
    return out;
  }
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The known name closest to a misspelled one, when it is close enough to be a typo. */
export function closestName(unknown: string, known: Iterable<string>): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = levenshtein(unknown.toLowerCase(), name.toLowerCase());
    if (distance <= Math.max(1, Math.floor(name.length / 3)) && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function isMapType(type: FieldType | undefined): boolean {
  return typeof type === 'object' && 'map' in type;
}

function fieldsOf(type: FieldType | undefined): Readonly<Record<string, FieldType>> | undefined {
  return typeof type === 'string' ? KUBERNETES_TYPES[type] : undefined;
}

/**
 * Walks `doc` (apiVersion/kind already known to Gantry) and returns the copy to validate, the
 * ignored fields and the unknown ones. `rootKey` is `${apiVersion}/${kind}` as Kubernetes names it.
 */
const views = new WeakMap<Schema, SchemaView>();

export function walkFields(doc: Record<string, unknown>, rootKey: string, schema: Schema): FieldWalkResult {
  let view = views.get(schema);
  if (!view) views.set(schema, (view = new SchemaView(schema)));
  const ignored: FieldWalkResult['ignored'] = [];
  const unknown: ManifestIssue[] = [];
  const rootType = KUBERNETES_ROOTS[rootKey];

  const walk = (value: unknown, type: FieldType | undefined, schemaNode: unknown, pointer: string): unknown => {
    const s = view.resolve(schemaNode);
    if (Array.isArray(value)) {
      const itemType = typeof type === 'object' && 'array' in type ? type.array : undefined;
      const items = s?.items;
      if (items === undefined && itemType === undefined) return value;
      return value.map((v, i) => walk(v, itemType, items, `${pointer}/${i}`));
    }
    if (!isRecord(value) || !s) return value;
    const props = view.properties(s);
    const k8sFields = fieldsOf(type);
    // A map (labels, nodeSelector, data): keys are the user's; only the values have a shape.
    if (props.size === 0 && !k8sFields) {
      const mapType = typeof type === 'object' && 'map' in type ? type.map : undefined;
      const valueSchema = s.additionalProperties;
      if (!isRecord(valueSchema) && mapType === undefined) return value;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = walk(v, mapType, isRecord(valueSchema) ? valueSchema : undefined, `${pointer}/${escapePointerToken(k)}`);
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const at = `${pointer}/${escapePointerToken(key)}`;
      const k8sField = k8sFields?.[key];
      if (props.has(key)) {
        out[key] = walk(v, k8sField, props.get(key), at);
      } else if (k8sField !== undefined || isMapType(type)) {
        // A field Kubernetes defines, or a key of one of its maps that Gantry reads only some keys
        // of (resources' `ephemeral-storage` beside cpu and memory).
        ignored.push({ pointer: at, message: `ignored: Gantry does not implement ${at}` });
      } else if (k8sFields) {
        const near = closestName(key, new Set([...props.keys(), ...Object.keys(k8sFields)]));
        unknown.push({
          code: 'SCHEMA',
          pointer,
          message: `unknown field ${JSON.stringify(key)}: Kubernetes does not define it here${near ? ` (did you mean "${near}"?)` : ''}`,
          at: { pointer: at, key: true },
        });
      } else {
        // A Gantry extension's subtree: its schema's own additionalProperties error says what is wrong.
        out[key] = v;
      }
    }
    return out;
  };

  const walked = walk(doc, rootType, schema, '');
  return { doc: walked as Record<string, unknown>, ignored, unknown };
}
