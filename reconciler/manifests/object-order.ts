/**
 * The order of a load's objects: by kind (Namespace first, as KINDS lists them), namespace and name.
 * Compared field by field without building keys: a load of 10,000 objects sorts or merges them on
 * every commit.
 */
import { KINDS, type LoadedManifest, type ManifestObject } from './types.ts';

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const namespaceOf = (o: ManifestObject) => (o.kind === 'Namespace' ? '' : o.metadata.namespace);

export function compareObjects(a: LoadedManifest, b: LoadedManifest): number {
  const x = a.manifest;
  const y = b.manifest;
  return KINDS.indexOf(x.kind) - KINDS.indexOf(y.kind) || compareStrings(namespaceOf(x), namespaceOf(y)) || compareStrings(x.metadata.name, y.metadata.name);
}
