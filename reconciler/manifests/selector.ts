/**
 * Kubernetes label selectors (matchLabels and matchExpressions with In, NotIn, Exists,
 * DoesNotExist): which instances a Deployment owns. Pure: the loader checks that a selector selects
 * its own template and that no two Deployments of a namespace could select each other's instances
 * (Kubernetes leaves overlapping selectors to fight over pods; Gantry refuses them).
 */
import type { ManifestIssue } from './manifest-issue.ts';

export interface SelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelectorLike {
  matchLabels?: Record<string, string>;
  matchExpressions?: SelectorRequirement[];
}

export function requirementMatches(r: SelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case 'In':
      return has && (r.values ?? []).includes(labels[r.key]!);
    case 'NotIn':
      return !has || !(r.values ?? []).includes(labels[r.key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** Whether `labels` are selected: every matchLabels pair and every expression holds. */
export function selectorMatches(s: LabelSelectorLike, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) if (labels[k] !== v) return false;
  return (s.matchExpressions ?? []).every((r) => requirementMatches(r, labels));
}

/** `app in (web, api)` and the like, as kubectl prints requirements. */
export function describeRequirement(r: SelectorRequirement): string {
  switch (r.operator) {
    case 'In':
      return `${r.key} in (${(r.values ?? []).join(', ')})`;
    case 'NotIn':
      return `${r.key} notin (${(r.values ?? []).join(', ')})`;
    case 'Exists':
      return r.key;
    case 'DoesNotExist':
      return `!${r.key}`;
  }
}

/** The expressions' own rules, and that each selects the template's labels. */
export function checkSelectorExpressions(s: LabelSelectorLike, templateLabels: Record<string, string>): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  (s.matchExpressions ?? []).forEach((r, i) => {
    const pointer = `/spec/selector/matchExpressions/${i}`;
    const values = r.values ?? [];
    if ((r.operator === 'In' || r.operator === 'NotIn') && values.length === 0) {
      issues.push({ code: 'INVALID_VALUE', pointer, message: `operator ${r.operator} needs at least one value` });
    } else if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && values.length > 0) {
      issues.push({ code: 'INVALID_VALUE', pointer: `${pointer}/values`, message: `operator ${r.operator} takes no values` });
    } else if (!requirementMatches(r, templateLabels)) {
      issues.push({ code: 'INVALID_VALUE', pointer, message: `selector requirement "${describeRequirement(r)}" does not select the template's labels` });
    }
  });
  return issues;
}

export interface SelectorOwner {
  key: string;
  selector: LabelSelectorLike;
  templateLabels: Record<string, string>;
}

/**
 * Pairs [earlier, later] of deployments (same namespace, by `key` "<ns>/<name>") either of whose
 * selectors selects the other's template labels. Candidates come from an index of template label
 * pairs, so a repository of thousands of deployments is not compared pairwise.
 */
export function overlappingSelectors(owners: readonly SelectorOwner[]): [SelectorOwner, SelectorOwner][] {
  const ns = (o: SelectorOwner) => o.key.slice(0, o.key.indexOf('/'));
  const byPair = new Map<string, SelectorOwner[]>();
  for (const o of owners) {
    for (const [k, v] of Object.entries(o.templateLabels)) {
      const pair = `${ns(o)}\0${k}\0${v}`;
      const list = byPair.get(pair);
      if (list) list.push(o);
      else byPair.set(pair, [o]);
    }
  }
  const order = new Map(owners.map((o, i) => [o.key, i]));
  const found = new Map<string, [SelectorOwner, SelectorOwner]>();
  for (const a of owners) {
    const first = Object.entries(a.selector.matchLabels ?? {})[0];
    // A selector of expressions only can select anything of its namespace: compared with all of it.
    const candidates = first ? (byPair.get(`${ns(a)}\0${first[0]}\0${first[1]}`) ?? []) : owners.filter((o) => ns(o) === ns(a));
    for (const b of candidates) {
      if (b === a || !selectorMatches(a.selector, b.templateLabels)) continue;
      const pair: [SelectorOwner, SelectorOwner] = order.get(a.key)! < order.get(b.key)! ? [a, b] : [b, a];
      found.set(`${pair[0].key}\0${pair[1].key}`, pair);
    }
  }
  return [...found.values()];
}
