/**
 * Manifests: what users write in Git, validated and with defaults applied.
 *
 *   loadManifests(files)      files of a commit -> { objects, errors }   (pure)
 *   validateDirectory(dir)    the same for a folder on disk              (`gantry validate`)
 *   templateHash(deployment)  identity of a pod template, names revisions
 */
export { loadManifests, isManifestPath, isLoaderInput, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_ALIAS_COUNT } from './load-manifests.ts';
export type { LoadOptions, LoadResult, ManifestFile } from './load-manifests.ts';
export { validateDirectory } from './validate-directory.ts';
export { validateManifest } from './validator.ts';
export type { ValidationResult } from './validator.ts';
export type { ManifestIssue } from './manifest-issue.ts';
export { ManifestError } from './errors.ts';
export type { ManifestErrorCode, ManifestErrorInit, ManifestErrorJSON } from './errors.ts';
export { templateHash } from './template-hash.ts';
export { parseCpu, parseMemory, formatCpu, formatMemory } from './quantity.ts';
export { API_VERSIONS, DEFAULT_NAMESPACE, KINDS, LEGACY_API_VERSION } from './types.ts';
export { ManifestWarning } from './warnings.ts';
export type { ManifestWarningCode, ManifestWarningJSON } from './warnings.ts';
export type {
  ContainerObject,
  DeploymentObject,
  DeploymentSpecObject,
  LoadedManifest,
  ManifestKind,
  ManifestObject,
  NamespaceObject,
  PodSpecObject,
  PodTemplateObject,
  RestartPolicy,
  SourceLocation,
  StrategyObject,
} from './types.ts';
