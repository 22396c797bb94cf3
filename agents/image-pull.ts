import type Docker from 'dockerode';
import type { ConfigVersionRecord } from '../state/records/config.ts';
import { StartError } from './container-runtime.ts';
import { interrupted } from './start-slots.ts';
import { authConfig, isUnauthorized, matchCredentials, parseDockerConfig, parseImage, redactCredentials, type RegistryCredential } from './registry-auth.ts';

/**
 * Makes an image present on the engine according to imagePullPolicy (IfNotPresent, Always,
 * Never), reporting progress as events. A failure is a StartError that the instance retries with
 * backoff: it never throws anything else, so a bad image can never take the agent down.
 */

export type PullPolicy = 'IfNotPresent' | 'Always' | 'Never';

export interface PullEvent {
  type: 'Normal' | 'Warning';
  reason: 'Pulling' | 'Pulled' | 'ImagePullFailed';
  message: string;
}

/** Progress events are at most this frequent per pull: enough to see it move, not a flood. */
const PROGRESS_EVERY_MS = 5_000;

/**
 * How long an image the engine said it has is taken as present without asking again. A scale-up
 * starts many instances of one image within seconds: one inspect serves all of them. An image
 * removed meanwhile (`docker rmi`) makes the create fail with "No such image", which forgets it
 * and looks again (docker-driver.ts), so nothing waits this long for a wrong answer.
 */
export const IMAGE_PRESENT_FOR_MS = 10_000;

interface Pull {
  done: Promise<void>;
  listeners: Set<(ev: PullEvent) => void>;
}

/**
 * An instance's imagePullSecrets: exact versions of Secrets of its namespace, read only when a pull
 * is needed (an image present under IfNotPresent reads nothing).
 */
export interface PullSecrets {
  namespace: string;
  refs: readonly { name: string; version: string }[];
  read(name: string, version: string): Promise<ConfigVersionRecord | undefined>;
}

export class ImagePuller {
  /** One pull per image at a time: three replicas starting together share it. */
  private readonly inflight = new Map<string, Pull>();
  /** Images found present, until when that answer holds (IMAGE_PRESENT_FOR_MS). */
  private readonly present = new Map<string, number>();
  /** One inspect per image at a time, shared like pulls. */
  private readonly inspecting = new Map<string, Promise<boolean>>();

  constructor(private readonly docker: Docker) {}

  /** The engine no longer has it (a create said so): the next ensure asks again. */
  forget(image: string): void {
    this.present.delete(image);
  }

  /**
   * `signal` ends this caller's wait for a pull (StartInterrupted): its instance is being stopped. The
   * pull itself goes on for the others waiting, and into the engine's cache.
   */
  async ensure(image: string, policy: PullPolicy, report: (ev: PullEvent) => void, secrets?: PullSecrets, signal?: AbortSignal): Promise<void> {
    if (policy !== 'Always' && (await this.isPresent(image))) return;
    if (policy === 'Never') {
      throw new StartError('ErrImageNeverPull', `ErrImageNeverPull: image ${image} is not present on the node and imagePullPolicy is Never`);
    }
    // Shared by the pulls with the same credentials only: one deployment's wrong password must not fail another's pull.
    const key = secrets?.refs.length ? `${image}\0${secrets.namespace}\0${JSON.stringify(secrets.refs)}` : image;
    let pull = this.inflight.get(key);
    if (!pull) {
      const listeners = new Set<(ev: PullEvent) => void>();
      const done = this.pull(image, (ev) => listeners.forEach((l) => l(ev)), secrets).finally(() => this.inflight.delete(key));
      // Every waiter may have been interrupted by the time it fails: that is no unhandled rejection.
      done.catch(() => {});
      pull = { done, listeners };
      this.inflight.set(key, pull);
    } else {
      report({ type: 'Normal', reason: 'Pulling', message: `waiting for the pull of image ${image} already in progress` });
    }
    pull.listeners.add(report);
    try {
      await (signal ? Promise.race([pull.done, interrupted(signal, `waiting for the pull of ${image}`)]) : pull.done);
    } finally {
      pull.listeners.delete(report);
    }
  }

  private isPresent(image: string): Promise<boolean> {
    if ((this.present.get(image) ?? 0) > Date.now()) return Promise.resolve(true);
    let check = this.inspecting.get(image);
    if (!check) {
      check = this.inspect(image).finally(() => this.inspecting.delete(image));
      this.inspecting.set(image, check);
    }
    return check;
  }

  private async inspect(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw new StartError('RuntimeUnavailable', `inspecting image ${image}: ${engineMessage(err)}`);
    }
    this.markPresent(image);
    return true;
  }

  private markPresent(image: string): void {
    const now = Date.now();
    // Expired answers go as new ones come: the map holds the images of recent starts only.
    for (const [i, until] of this.present) if (until <= now) this.present.delete(i);
    this.present.set(image, now + IMAGE_PRESENT_FOR_MS);
  }

  private async pull(image: string, report: (ev: PullEvent) => void, secrets?: PullSecrets): Promise<void> {
    const started = Date.now();
    // Listeners are added right after this call returns; let them see the first event.
    await Promise.resolve();
    const fail = (message: string): never => {
      report({ type: 'Warning', reason: 'ImagePullFailed', message: `failed to pull image ${image}: ${message}` });
      throw new StartError('ImagePullFailed', `ImagePullFailed: ${message}`);
    };
    const { registry } = parseImage(image);
    const { credentials, problems, names } = secrets?.refs.length ? await readCredentials(secrets, (m) => fail(m)) : { credentials: [], problems: [], names: [] };
    // As the kubelet: every credential that applies is tried in turn, and no match is an anonymous pull.
    const candidates: (RegistryCredential | undefined)[] = matchCredentials(image, credentials);
    if (candidates.length === 0) candidates.push(undefined);
    let failure = '';
    for (const cred of candidates) {
      report({ type: 'Normal', reason: 'Pulling', message: `pulling image ${image}${cred ? ` with credentials from ${cred.source}` : ''}` });
      try {
        const stream = await this.docker.pull(image, cred ? { authconfig: authConfig(cred, registry) } : {});
        await followPull(stream, (progress) => report({ type: 'Normal', reason: 'Pulling', message: `pulling image ${image}: ${progress}` }));
        report({ type: 'Normal', reason: 'Pulled', message: `pulled image ${image} in ${((Date.now() - started) / 1000).toFixed(1)}s` });
        this.markPresent(image);
        return;
      } catch (err) {
        // Redacted all the same: the engine has no reason to echo a credential, and it must never show.
        const message = redactCredentials(engineMessage(err), credentials);
        if (!secrets?.refs.length) fail(message);
        const unauthorized = isUnauthorized(message);
        const source = cred ? `credentials from ${cred.source}` : `no credentials for ${registry} in imagePullSecrets ${names.join(', ')}${problems.length > 0 ? `; ${problems.join('; ')}` : ''}`;
        failure = `pull of ${image} from ${registry} failed: ${unauthorized ? 'unauthorized' : message} (${source})`;
        // Another credential can only help where these were refused.
        if (!unauthorized) break;
      }
    }
    fail(failure);
  }
}

/** The credentials of every pull secret, in order; a version that cannot be read is a failure to retry (it names the Secret). */
async function readCredentials(secrets: PullSecrets, fail: (message: string) => never): Promise<{ credentials: RegistryCredential[]; problems: string[]; names: string[] }> {
  const credentials: RegistryCredential[] = [];
  const problems: string[] = [];
  const names = secrets.refs.map((r) => `Secret ${secrets.namespace}/${r.name}`);
  for (const [i, ref] of secrets.refs.entries()) {
    let record: ConfigVersionRecord | undefined;
    try {
      record = await secrets.read(ref.name, ref.version);
    } catch (err) {
      fail(`reading image pull secret ${names[i]}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!record) fail(`image pull secret ${names[i]} (version ${ref.version}) is not stored`);
    const parsed = parseDockerConfig(record!, names[i]!);
    credentials.push(...parsed.credentials);
    problems.push(...parsed.problems);
  }
  return { credentials, problems, names };
}

interface PullMessage {
  id?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
}

/**
 * Reads the engine's JSON-lines pull stream to its end. Errors arrive in the stream itself (an
 * `error` line after a 200), which dockerode's followProgress does not treat as a failure.
 */
function followPull(stream: NodeJS.ReadableStream, progress: (summary: string) => void): Promise<void> {
  const layers = new Map<string, { current: number; total: number; done: boolean }>();
  let lastReport = Date.now();
  let failure: string | undefined;
  let buffered = '';
  return new Promise<void>((resolve, reject) => {
    const onLine = (line: string) => {
      if (!line.trim()) return;
      let msg: PullMessage;
      try {
        msg = JSON.parse(line) as PullMessage;
      } catch {
        return;
      }
      if (msg.error || msg.errorDetail?.message) failure ??= msg.errorDetail?.message ?? msg.error;
      if (msg.id && msg.progressDetail?.total) {
        layers.set(msg.id, { current: msg.progressDetail.current ?? 0, total: msg.progressDetail.total, done: false });
      } else if (msg.id && /complete|already exists/i.test(msg.status ?? '')) {
        const layer = layers.get(msg.id) ?? { current: 0, total: 0, done: true };
        layers.set(msg.id, { ...layer, current: layer.total, done: true });
      }
      if (Date.now() - lastReport >= PROGRESS_EVERY_MS && layers.size > 0) {
        lastReport = Date.now();
        const all = [...layers.values()];
        const mb = (n: number) => (n / 1e6).toFixed(1);
        progress(`${all.filter((l) => l.done).length}/${all.length} layers, ${mb(all.reduce((s, l) => s + l.current, 0))} of ${mb(all.reduce((s, l) => s + l.total, 0))} MB`);
      }
    };
    stream.on('data', (chunk: Buffer | string) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    stream.once('error', reject);
    stream.once('end', () => {
      onLine(buffered);
      if (failure !== undefined) reject(new Error(failure));
      else resolve();
    });
  });
}

/** The engine's own words, without dockerode's "(HTTP code 500) server error - " wrapping. */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: string } | null; message?: string };
  if (e?.json?.message) return e.json.message.trim();
  return String(e?.message ?? err)
    .replace(/^\(HTTP code \d+\)[^-]*- /, '')
    .trim();
}

/** The engine's answer to a create whose image it does not have. */
export function isNoSuchImage(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404 && /no such image/i.test(engineMessage(err));
}
