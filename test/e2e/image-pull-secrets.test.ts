import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import type { InstanceView } from '../../reconciler/api/views.ts';
import { apiFetch } from '../helpers/api-auth.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { dockerTest, dockerUnavailable, removeContainersWithLabels } from '../helpers/docker.ts';
import { removeImage, startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * imagePullSecrets end to end, against a registry that wants credentials (test/helpers/fake-registry.ts):
 * a Deployment whose image is only there pulls it with the credentials of a dockerconfigjson Secret
 * in Git; a commit with a wrong password leaves the new revision waiting on ImagePullFailed with a
 * message that names the Secret and shows no credential, while the running replica stays; a commit
 * that fixes the Secret lets it pull. No credential appears in any output, event or API answer.
 */

// A node name of its own: other suites' agents share this engine.
const NODE = `pull-${randomUUID().slice(0, 6)}`;
const USER = 'gantry-puller';
const PASSWORD = 'pull-pa55-n0body-may-see';
const WRONG = 'wr0ng-pa55-n0body-may-see';
const USER2 = 'gantry-puller-2';
const PASSWORD2 = 'sec0nd-pa55-n0body-may-see';

let registry: FakeRegistry;
let c: TestCluster;

/** A dockerconfigjson Secret: the entry as username/password, or as `auth` (base64 of user:password). */
function regcred(entry: Record<string, string>): string {
  const config = JSON.stringify({ auths: { [registry.host]: entry } });
  return `apiVersion: v1
kind: Secret
metadata: { name: regcred }
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: ${Buffer.from(config).toString('base64')}
`;
}

const deployment = () => `apiVersion: apps/v1
kind: Deployment
metadata: { name: pulltest }
spec:
  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }
  template:
    metadata: { labels: { app: pulltest } }
    spec:
      terminationGracePeriodSeconds: 1
      imagePullSecrets: [{ name: regcred }]
      containers:
        - name: main
          image: ${registry.image}
          imagePullPolicy: Always
          command: ["sh", "-c", "cat /pulltest.txt && exec sleep 3600"]
`;

const instances = async () => (await c.instances()).filter((i) => i.deployment === 'pulltest');

/** The one instance of the deployment, Running, once it is alone; with what its container printed. */
async function runningAlone(notRevisions: string[]): Promise<InstanceView> {
  return waitFor(async () => {
    const all = await instances();
    return all.length === 1 && all[0]!.phase === 'Running' && !notRevisions.includes(all[0]!.revision) ? all[0] : undefined;
  }, { timeoutMs: 60_000, what: 'one running pulltest instance' });
}

async function logsOf(id: string): Promise<string> {
  return waitFor(async () => {
    const res = await apiFetch(`${c.api}/api/v1/instances/${id}/logs`);
    const text = res.ok ? await res.text() : '';
    return text.includes(registry.marker) ? text : undefined;
  }, { what: `the marker in the logs of ${id}` });
}

before(async () => {
  if (dockerUnavailable) return;
  registry = await startFakeRegistry({ users: { [USER]: PASSWORD, [USER2]: PASSWORD2 } });
  c = await startCluster({ nodes: [NODE], reconcilerFlags: ['--resync', '2s'], files: { 'regcred.yaml': regcred({ username: USER, password: PASSWORD }), 'pulltest.yaml': deployment() } });
});

after(async () => {
  await c?.stop();
  await removeContainersWithLabels([`dev.gantry.node=${NODE}`]);
  if (registry) {
    await removeImage(registry.image);
    await registry.close();
  }
});

dockerTest('an image only a registry with credentials has is pulled with the imagePullSecrets; a wrong password waits on ImagePullFailed, a fixed one pulls', async () => {
  // 1. Pulled with the Secret's credentials: the container runs what the registry served.
  const first = await runningAlone([]);
  assert.ok(registry.requests.some((r) => r.user === USER && r.path.endsWith('/manifests/1') && r.status === 200), 'an authorized manifest request');
  assert.ok(registry.requests.some((r) => r.user === USER && r.path.includes('/blobs/') && r.status === 200), 'an authorized blob download');
  await logsOf(first.id);

  // 2. A wrong password: the Secret is part of the template, so a new revision comes; it cannot
  // pull and waits (retried), while the running replica stays (maxUnavailable 0).
  await c.repo.commitFiles({ 'regcred.yaml': regcred({ username: USER, password: WRONG }) }, 'regcred: a wrong password');
  const waiting = await waitFor(async () => (await instances()).find((i) => i.revision !== first.revision && i.reason === 'ImagePullFailed'), { timeoutMs: 60_000, what: 'the new revision waiting on ImagePullFailed' });
  assert.equal(waiting.phase, 'Pending');
  assert.equal(waiting.message, `ImagePullFailed: pull of ${registry.image} from ${registry.host} failed: unauthorized (credentials from Secret default/regcred)`);
  assert.ok(registry.requests.some((r) => r.sentCredentials && !r.user && r.status === 401), 'the wrong credentials were refused');
  const old = (await instances()).find((i) => i.id === first.id);
  assert.equal(old?.phase, 'Running', 'the running replica stays while the new revision cannot pull');

  // 3. Fixed in a new commit (another user, in the `auth` form): the next revision pulls and replaces both.
  await c.repo.commitFiles({ 'regcred.yaml': regcred({ auth: Buffer.from(`${USER2}:${PASSWORD2}`).toString('base64') }) }, 'regcred: fixed');
  const fixed = await runningAlone([first.revision, waiting.revision]);
  assert.ok(registry.requests.some((r) => r.user === USER2 && r.path.endsWith('/manifests/1') && r.status === 200), 'pulled as the second user');
  await logsOf(fixed.id);

  // No credential anywhere: processes' output, events, API answers.
  const shown: string[] = [c.reconciler.output(), ...[...c.agents.values()].map((a) => a.output())];
  for (const path of ['/api/v1/status', '/api/v1/deployments', '/api/v1/instances', '/api/v1/events?limit=1000', '/api/v1/diff', '/api/v1/deployments/default/pulltest/rollout', '/api/v1/secrets']) {
    const res = await apiFetch(c.api + path);
    assert.equal(res.status, 200, path);
    shown.push(await res.text());
  }
  const events = shown.at(-4)!;
  assert.match(events, /with credentials from Secret default\/regcred/);
  const forms = [PASSWORD, WRONG, PASSWORD2, `${USER}:${PASSWORD}`, `${USER2}:${PASSWORD2}`].flatMap((s) => [s, Buffer.from(s).toString('base64'), Buffer.from(s).toString('hex')]);
  for (const text of shown) for (const form of forms) assert.ok(!text.includes(form), `a credential (${form.slice(0, 4)}...) was shown: ...${text.slice(Math.max(0, text.indexOf(form) - 80), text.indexOf(form) + 20)}`);
});
