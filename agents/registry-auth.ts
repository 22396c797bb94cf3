/**
 * Registry credentials of image pull secrets: reading a `kubernetes.io/dockerconfigjson` (or the
 * legacy `kubernetes.io/dockercfg`) Secret, and choosing which of its entries apply to an image,
 * by the kubelet's rules (pkg/credentialprovider keyring): an entry's key is a registry host with
 * an optional port, scheme and path (`https://index.docker.io/v1/`, `127.0.0.1:5000`,
 * `*.example.com`, `quay.io/team`); it applies when the host has as many dot-separated labels as
 * the image's, each matching (`*` globs within a label), the ports are equal and its path is a
 * prefix of the image's repository. The more specific keys come first, and every matching entry of
 * every pull secret is a candidate, in that order. Images without a registry are Docker Hub's,
 * whose keys are written `docker.io`, `index.docker.io` or `registry-1.docker.io` alike.
 * One departure: a path matches whole segments (`quay.io/team` does not cover `quay.io/teamx`).
 * Pure. Values read here must never reach a message: messages name Secrets and registry keys only.
 */

export interface ImageRef {
  /** host[:port], lowercase; `docker.io` for Docker Hub. */
  registry: string;
  /** Path in the registry, without tag or digest (`library/busybox` for `busybox`). */
  repository: string;
}

export interface RegistryCredential {
  /** Where it comes from, for messages: `Secret <ns>/<name>`. */
  source: string;
  /** The entry's key as written in the Secret (a registry, never a credential). */
  key: string;
  username: string;
  password: string;
}

export const DOCKER_HUB = 'docker.io';
const HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io']);
/** What Docker's own clients send as the server address of Docker Hub. */
const HUB_SERVER_ADDRESS = 'https://index.docker.io/v1/';

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Docker's reading of an image reference: a first component with `.` or `:`, or `localhost`, is a registry. */
export function parseImage(image: string): ImageRef {
  const name = image.split('@')[0]!;
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let repository = hasRegistry ? name.slice(slash + 1) : name;
  // A tag is a colon in the last path segment (a colon before it is the registry's port).
  const lastSlash = repository.lastIndexOf('/');
  const colon = repository.indexOf(':', lastSlash + 1);
  if (colon >= 0) repository = repository.slice(0, colon);
  const registry = hasRegistry ? normalizeHost(first) : DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  return { registry, repository };
}

function normalizeHost(hostPort: string): string {
  const h = hostPort.toLowerCase();
  return HUB_ALIASES.has(h) ? DOCKER_HUB : h;
}

/** host labels, port and path of a key: scheme dropped, `/v1/` or `/v2/` API prefixes dropped, as the kubelet does. */
function parseKey(key: string): { labels: string[]; port: string; path: string } | undefined {
  const rest = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = rest.indexOf('/');
  const hostPort = normalizeHost(slash < 0 ? rest : rest.slice(0, slash));
  let path = slash < 0 ? '' : rest.slice(slash);
  if (path.startsWith('/v1/') || path.startsWith('/v2/')) path = path.slice(3);
  path = path.replace(/\/+$/, '');
  const { host, port } = splitHostPort(hostPort);
  if (!host) return undefined;
  return { labels: host.split('.'), port, path };
}

function splitHostPort(hostPort: string): { host: string; port: string } {
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']');
    return end < 0 ? { host: hostPort, port: '' } : { host: hostPort.slice(0, end + 1), port: hostPort.slice(end + 2) };
  }
  const colon = hostPort.lastIndexOf(':');
  return colon < 0 ? { host: hostPort, port: '' } : { host: hostPort.slice(0, colon), port: hostPort.slice(colon + 1) };
}

/** One host label against a glob label (`*` any run of characters, `?` one). */
function labelMatches(glob: string, label: string): boolean {
  if (!/[*?]/.test(glob)) return glob === label;
  const source = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`).test(label);
}

/** Whether an entry written under `key` applies to `image`. */
export function keyMatches(key: string, image: ImageRef): boolean {
  const k = parseKey(key);
  if (!k) return false;
  const target = splitHostPort(image.registry);
  const labels = target.host.split('.');
  if (k.port !== target.port || k.labels.length !== labels.length) return false;
  if (!k.labels.every((glob, i) => labelMatches(glob, labels[i]!))) return false;
  const repo = `/${image.repository}`;
  return k.path === '' || repo === k.path || repo.startsWith(`${k.path}/`);
}

/** Sort key of an entry: host and path as the kubelet indexes them (reverse order puts the specific first). */
function specificity(key: string): string {
  const k = parseKey(key);
  return k ? `${k.labels.join('.')}${k.port ? `:${k.port}` : ''}${k.path}` : key;
}

/**
 * The credentials of one pull secret (its ConfigVersionRecord: `type`, values base64). `problems`
 * says, without values, which entries could not be read (they are left out).
 */
export function parseDockerConfig(secret: { type?: string; data: Record<string, string> }, source: string): { credentials: RegistryCredential[]; problems: string[] } {
  const json = secret.type === 'kubernetes.io/dockercfg';
  const field = json ? '.dockercfg' : '.dockerconfigjson';
  const raw = secret.data[field];
  if (raw === undefined) return { credentials: [], problems: [`${source} has no key ${field}`] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
  } catch {
    return { credentials: [], problems: [`${source}: key ${field} is not valid JSON`] };
  }
  const auths = json ? parsed : isRecord(parsed) ? parsed.auths : undefined;
  if (!isRecord(auths)) return { credentials: [], problems: [`${source}: key ${field} has no registries`] };
  const credentials: RegistryCredential[] = [];
  const problems: string[] = [];
  for (const [key, entry] of Object.entries(auths)) {
    const cred = isRecord(entry) ? entryCredential(entry) : undefined;
    if (cred) credentials.push({ source, key, ...cred });
    else problems.push(`${source}: the entry for ${JSON.stringify(key)} has neither "auth" (base64 of user:password) nor "username" and "password"`);
  }
  return { credentials, problems };
}

/** `auth` (base64 of `user:password`) wins over `username`/`password`, as in Kubernetes' DockerConfigEntry. */
function entryCredential(entry: Record<string, unknown>): { username: string; password: string } | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon > 0 ? { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) } : undefined;
  }
  if (typeof entry.username === 'string' && entry.username !== '' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
  return undefined;
}

/** The credentials that apply to `image`, the most specific key first (stable: pull secrets keep their order among equals). */
export function matchCredentials(image: string, credentials: readonly RegistryCredential[]): RegistryCredential[] {
  const ref = parseImage(image);
  const matching = credentials.filter((c) => keyMatches(c.key, ref));
  const order = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);
  return matching.map((c, i) => ({ c, i, s: specificity(c.key) })).sort((a, b) => order(a.s, b.s) || a.i - b.i).map((x) => x.c);
}

/** dockerode's `authconfig` for a pull from `registry` (Docker Hub's server address is its v1 URL). */
export function authConfig(c: RegistryCredential, registry: string): { username: string; password: string; serveraddress: string } {
  return { username: c.username, password: c.password, serveraddress: registry === DOCKER_HUB ? HUB_SERVER_ADDRESS : registry };
}

/** `text` with every credential value replaced: engine messages are shown, credentials never. */
export function redactCredentials(text: string, credentials: readonly RegistryCredential[]): string {
  let out = text;
  for (const c of credentials) {
    const secrets = [`${c.username}:${c.password}`, Buffer.from(`${c.username}:${c.password}`).toString('base64'), c.password].filter((s) => s.length >= 3);
    for (const s of secrets) out = out.split(s).join('***');
  }
  return out;
}

/** Whether an engine message says the registry refused the credentials (or wants some). */
export function isUnauthorized(message: string): boolean {
  return /unauthori[sz]ed|authentication required|access (is )?denied|denied:|\b401\b|incorrect username or password|no basic auth credentials|may require 'docker login'/i.test(message);
}
