/**
 * Manifests as the rest of Gantry sees them: the types generated from schemas/ with every default
 * applied, so consumers never repeat a default. Defaults live in the schemas (`default`) and are
 * applied by normalize.ts; a unit test checks the two agree.
 */
import type {
  Annotations,
  CanaryStep,
  LabelSelector,
  ConfigMap,
  ConfigMapMetadata,
  Secret,
  SecretMetadata,
  Service,
  ServiceMetadata,
  ServicePort,
  ServiceSpec,
  Container,
  ContainerPort,
  Deployment,
  DeploymentMetadata,
  DeploymentSpec,
  EnvVar,
  Labels,
  Namespace,
  NamespaceMetadata,
  NamespaceSpec,
  PodSpec,
  PodTemplate,
  TemplateMetadata,
} from '../../schemas/generated/index.ts';
import type { RestartPolicy } from '../../state/records/instance.ts';

/** Kinds in the order they are applied and listed: namespaces before what they contain. */
export const KINDS = ['Namespace', 'ConfigMap', 'Secret', 'Deployment', 'Service'] as const;
export type ManifestKind = (typeof KINDS)[number];
/** The apiVersion of each kind Gantry runs: Kubernetes' own. */
export const API_VERSIONS: Readonly<Record<ManifestKind, string>> = { Namespace: 'v1', ConfigMap: 'v1', Secret: 'v1', Deployment: 'apps/v1', Service: 'v1' };
/** Gantry's first dialect: still read (as the Kubernetes apiVersion of the kind), with a deprecation warning. */
export const LEGACY_API_VERSION = 'gantry.dev/v1';
export const DEFAULT_NAMESPACE = 'default';

export type { RestartPolicy };

export interface NamespaceObject extends Namespace {
  metadata: NamespaceMetadata & { labels: Labels; annotations: Annotations };
  spec: NamespaceSpec;
}

export interface ContainerObject extends Container {
  args: string[];
  env: EnvVar[];
  ports: ContainerPort[];
}

export interface PodSpecObject extends PodSpec {
  containers: [ContainerObject, ...ContainerObject[]];
  /** Absent when none (an empty list too): templates without them hash as they did before they existed. */
  initContainers?: ContainerObject[];
  nodeSelector: Record<string, string>;
  restartPolicy: RestartPolicy;
  terminationGracePeriodSeconds: number;
}

export interface PodTemplateObject extends PodTemplate {
  metadata: TemplateMetadata & { annotations: Annotations };
  spec: PodSpecObject;
}

/** maxSurge and maxUnavailable: a count, or a percentage of replicas such as "25%". */
export type IntOrPercent = number | string;

export type StrategyObject =
  | { type: 'RollingUpdate'; rollingUpdate: { maxSurge: IntOrPercent; maxUnavailable: IntOrPercent } }
  | { type: 'Recreate' }
  | { type: 'Canary'; steps: [CanaryStep, ...CanaryStep[]] };

export interface DeploymentSpecObject extends DeploymentSpec {
  replicas: number;
  /** Written, or the template's labels as matchLabels. */
  selector: LabelSelector;
  strategy: StrategyObject;
  minReadySeconds: number;
  revisionHistoryLimit: number;
  progressDeadlineSeconds: number;
  rollback: 'auto' | 'none';
  template: PodTemplateObject;
}

export interface DeploymentObject extends Deployment {
  metadata: DeploymentMetadata & { namespace: string; labels: Labels; annotations: Annotations };
  spec: DeploymentSpecObject;
}

/** A valid manifest with defaults applied; `kind` tells which. */
export interface ServiceObject extends Service {
  metadata: ServiceMetadata & { namespace: string; labels: Labels; annotations: Annotations };
  spec: ServiceSpec & { ports: [ServicePortObject, ...ServicePortObject[]] };
}

export interface ServicePortObject extends ServicePort {
  targetPort: number | string;
  protocol: 'TCP' | 'UDP';
}

export interface ConfigMapObject extends ConfigMap {
  metadata: ConfigMapMetadata & { namespace: string; labels: Labels; annotations: Annotations };
  data: Record<string, string>;
  binaryData: Record<string, string>;
}

/** `data` holds every value base64-encoded, `stringData` merged in (as Kubernetes stores a Secret). */
export interface SecretObject extends Omit<Secret, 'stringData'> {
  metadata: SecretMetadata & { namespace: string; labels: Labels; annotations: Annotations };
  type: string;
  data: Record<string, string>;
}

export type ManifestObject = NamespaceObject | ConfigMapObject | SecretObject | DeploymentObject | ServiceObject;

/** Where a manifest was written: the start of its document (1-based line and column). */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/**
 * A valid manifest and where it was written. The manifest is kept apart from its location so it is
 * exactly what the user wrote plus defaults (what gets stored, compared and hashed).
 */
export interface LoadedManifest<M extends ManifestObject = ManifestObject> extends SourceLocation {
  manifest: M;
}
