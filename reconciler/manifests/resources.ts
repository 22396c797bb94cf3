/**
 * A container's `resources` as written (Kubernetes' requests and limits, or Gantry's first flat
 * cpu/memory) and as records hold them (ContainerSpec: requests in cpuMilli/memoryBytes, limits
 * apart). Pure: checks.ts reports the issues, desired-state.ts builds the records.
 *
 * Nothing here is a normalization default: normalize.ts leaves `resources` as written, so the
 * template hash of a manifest that did not change stays what it was before requests and limits
 * existed, and upgrading Gantry rolls no deployment.
 */
import type { CpuQuantity, MemoryQuantity, Resources } from '../../schemas/generated/index.ts';
import type { ResourceLimits } from '../../state/records/instance.ts';
import { MAX_CPU_MILLI, MAX_MEMORY_BYTES } from './limits.ts';
import type { ManifestIssue } from './manifest-issue.ts';
import { parseCpu, parseMemory } from './quantity.ts';

const FIELDS = {
  cpu: { parse: parseCpu, max: MAX_CPU_MILLI, describeMax: '1024 cores' },
  memory: { parse: parseMemory, max: MAX_MEMORY_BYTES, describeMax: '1Pi' },
} as const;
type Field = keyof typeof FIELDS;
const FIELD_NAMES = Object.keys(FIELDS) as Field[];

/** What a ContainerSpec takes from `resources`. */
export interface ResolvedResources {
  /** The requests (what the scheduler reserves): written, else the limit, else 0. */
  cpuMilli: number;
  memoryBytes: number;
  /** Absent for the flat form (and no resources at all): a record as Gantry wrote it before limits. */
  limits?: ResourceLimits;
}

function quantity(field: Field, value: CpuQuantity | MemoryQuantity | undefined): number | undefined {
  // Only called on checked manifests: a value that does not parse was reported by checkResources.
  return value === undefined ? undefined : FIELDS[field].parse(value);
}

/**
 * Requests and limits of a checked container. A limit without a request makes the request equal to
 * the limit, as Kubernetes defaults it. The flat form keeps its meaning (request, and on Docker the
 * limit) through a record without `limits`, exactly what older versions wrote.
 */
export function resolveResources(r: Resources | undefined): ResolvedResources {
  if (!r || (r.requests === undefined && r.limits === undefined)) {
    return { cpuMilli: quantity('cpu', r?.cpu) ?? 0, memoryBytes: quantity('memory', r?.memory) ?? 0 };
  }
  const limitCpu = quantity('cpu', r.limits?.cpu);
  const limitMemory = quantity('memory', r.limits?.memory);
  return {
    cpuMilli: quantity('cpu', r.requests?.cpu) ?? limitCpu ?? 0,
    memoryBytes: quantity('memory', r.requests?.memory) ?? limitMemory ?? 0,
    limits: { ...(limitCpu !== undefined ? { cpuMilli: limitCpu } : {}), ...(limitMemory !== undefined ? { memoryBytes: limitMemory } : {}) },
  };
}

/**
 * What the schema cannot say about `resources` at `base` (…/containers/N/resources): quantities
 * that must parse and stay within the maxima however written ("0.0001" cores, sizes beyond 2^53,
 * "1025"), the flat form not mixed with requests or limits, and no request above its limit.
 */
export function checkResources(r: Resources | undefined, base: string): ManifestIssue[] {
  if (!r) return [];
  const issues: ManifestIssue[] = [];
  const parsed = (field: Field, value: CpuQuantity | MemoryQuantity | undefined, pointer: string): number | undefined => {
    if (value === undefined) return undefined;
    const f = FIELDS[field];
    try {
      const n = f.parse(value);
      if (n <= f.max) return n;
      issues.push({ code: 'INVALID_VALUE', pointer, message: `must be at most ${f.describeMax}` });
    } catch (err) {
      issues.push({ code: 'INVALID_VALUE', pointer, message: (err as Error).message });
    }
    return undefined;
  };
  const split = r.requests !== undefined || r.limits !== undefined;
  for (const field of FIELD_NAMES) {
    const pointer = `${base}/${field}`;
    if (split && r[field] !== undefined) {
      // Which would it be, a request or a limit? Kubernetes has no flat form to fall back on.
      issues.push({
        code: 'INVALID_VALUE',
        pointer,
        message: `must not be set together with requests or limits: write requests.${field} and/or limits.${field} (the flat ${field} means both)`,
        at: { pointer, key: true },
      });
      continue;
    }
    parsed(field, r[field], pointer);
  }
  for (const field of FIELD_NAMES) {
    const request = parsed(field, r.requests?.[field], `${base}/requests/${field}`);
    const limit = parsed(field, r.limits?.[field], `${base}/limits/${field}`);
    if (request !== undefined && limit !== undefined && request > limit) {
      issues.push({
        code: 'INVALID_VALUE',
        pointer: `${base}/requests/${field}`,
        // As the user wrote it: "500m", not a rounding of it.
        message: `must be at most the limit ${String(r.limits![field])} (limits.${field}); a container cannot be guaranteed more than it may use`,
      });
    }
  }
  return issues;
}

/**
 * What the scheduler reserves for a pod, as Kubernetes computes its effective request: init
 * containers run one at a time before the containers, so for cpu and memory each it is the larger
 * of the containers' sum and the largest init container's request. Without init containers, the sum.
 */
export function podRequests(containers: readonly ResolvedResources[], initContainers: readonly ResolvedResources[] = []): { cpuMilli: number; memoryBytes: number } {
  const sum = (field: 'cpuMilli' | 'memoryBytes') => containers.reduce((s, c) => s + c[field], 0);
  const largest = (field: 'cpuMilli' | 'memoryBytes') => initContainers.reduce((m, c) => Math.max(m, c[field]), 0);
  return { cpuMilli: Math.max(sum('cpuMilli'), largest('cpuMilli')), memoryBytes: Math.max(sum('memoryBytes'), largest('memoryBytes')) };
}
