import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { InstanceView } from '../../reconciler/api/views.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet } from '../helpers/agent-fixtures.ts';
import { gitAsync } from '../helpers/git-repo.ts';
import { apiFetch } from '../helpers/api-auth.ts';

/**
 * ConfigMaps and Secrets on real processes (issue 12, section 3): replicas get their values as
 * environment variables; a ConfigMap change in Git rolls the deployment within maxUnavailable, and
 * the plan says so beforehand; a rotated Secret rolls it too; and the Secret's value appears in no
 * log, event, API response, CLI output or plan, in any encoding.
 */

const SECRET = 'pa55-w0rd-n0body-may-see';
const ROTATED = 'r0tated-pa55-n0body-may-see';
const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);

const configMap = (greeting: string) => `apiVersion: v1
kind: ConfigMap
metadata: { name: web-config }
data:
  greeting: ${greeting}
  color: blue
`;
const secret = (token: string) => `apiVersion: v1
kind: Secret
metadata: { name: web-secret }
type: Opaque
data:
  token: ${Buffer.from(token).toString('base64')}
`;
// Answers "<greeting> <color> <sha of the token>": proof the token arrived, without showing it.
const SERVER = "const c=require('crypto');require('http').createServer((q,s)=>s.end([process.env.GREETING,process.env.CFG_color,c.createHash('sha256').update(process.env.TOKEN||'').digest('hex').slice(0,12)].join(' '))).listen(+process.env.PORT)";
const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 4
  selector: { matchLabels: { app: web } }
  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", ${JSON.stringify(SERVER)}]
          env:
            - { name: GREETING, valueFrom: { configMapKeyRef: { name: web-config, key: greeting } } }
            - { name: TOKEN, valueFrom: { secretKeyRef: { name: web-secret, key: token } } }
          envFrom:
            - { configMapRef: { name: web-config }, prefix: CFG_ }
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /, port: http }, periodSeconds: 1 }
`;

let c: TestCluster;
const gantry = (...args: string[]) => runGantry([...args, '--api', c.api]);

/** Every replica Running and answering `body`, and nothing else running. */
async function converged(body: string): Promise<InstanceView[]> {
  return waitFor(async () => {
    const all = await c.instances();
    if (all.length !== 4 || !all.every((i) => i.phase === 'Running' && i.ready)) return undefined;
    const bodies = await Promise.all(all.map((i) => httpGet(i.ports[0]!.hostPort).catch(() => '')));
    return bodies.every((b) => b === body) ? all : undefined;
  }, { timeoutMs: 60_000, what: `4 replicas answering "${body}"` });
}

before(async () => {
  c = await startCluster({ reconcilerFlags: ['--resync', '2s'], files: { 'web-config.yaml': configMap('hello'), 'web-secret.yaml': secret(SECRET), 'web.yaml': web } });
});
after(() => c?.stop());

test('a ConfigMap change is planned, then rolled within maxUnavailable; a rotated Secret rolls too; its value is shown nowhere', async () => {
  await converged(`hello blue ${sha(SECRET)}`);

  // Planned on a branch first: the plan names the ConfigMap change and the deployment it rolls.
  await gitAsync(['checkout', '-q', '-b', 'greeting'], c.repo.dir);
  await c.repo.commitFiles({ 'web-config.yaml': configMap('bonjour') }, 'a new greeting');
  await gitAsync(['checkout', '-q', 'main'], c.repo.dir);
  const plan = await gantry('plan', '--ref', 'greeting');
  assert.equal(plan.code, 2, plan.stderr);
  assert.match(plan.stdout, /^~ ConfigMap default\/web-config: data\.greeting: "hello" -> "bonjour"$/m);
  assert.match(plan.stdout, /^~ Deployment default\/web: 4 instance\(s\) replaced, maxSurge 1, maxUnavailable 1, ConfigMap web-config [0-9a-f]{8} -> [0-9a-f]{8}/m);
  const markdown = await gantry('plan', '--ref', 'greeting', '-o', 'markdown');

  // Merged: rolled out, never more than one replica unavailable nor more than one extra.
  const samples: { total: number; ready: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const all = await c.instances();
      samples.push({ total: all.length, ready: all.filter((i) => i.ready).length });
    }
  })();
  await gitAsync(['merge', '-q', '--ff-only', 'greeting'], c.repo.dir);
  await converged(`bonjour blue ${sha(SECRET)}`);
  sampling = false;
  await sampler;
  assert.ok(samples.length > 10, `only ${samples.length} samples`);
  assert.ok(samples.every((s) => s.ready >= 3), `fewer than 3 ready: ${JSON.stringify(samples.find((s) => s.ready < 3))}`);
  assert.ok(samples.every((s) => s.total <= 5), `more than 5 instances: ${JSON.stringify(samples.find((s) => s.total > 5))}`);

  // A rotated Secret rolls the replicas onto the new value.
  await c.repo.commitFiles({ 'web-secret.yaml': secret(ROTATED) }, 'rotate the token');
  await converged(`bonjour blue ${sha(ROTATED)}`);

  // Everything that is shown: processes' output, events, API answers, CLI output, plans.
  const shown: string[] = [c.reconciler.output(), ...[...c.agents.values()].map((a) => a.output()), plan.stdout, plan.stderr, markdown.stdout];
  for (const path of ['/api/v1/status', '/api/v1/deployments', '/api/v1/instances', '/api/v1/events?limit=1000', '/api/v1/diff', '/api/v1/plan', '/api/v1/deployments/default/web/rollout', '/api/v1/nodes', '/api/v1/services', '/api/v1/configmaps', '/api/v1/secrets']) {
    const res = await apiFetch(c.api + path);
    assert.equal(res.status, 200, path);
    shown.push(await res.text());
  }
  // Listed masked: its size and a hash tell versions apart.
  const secrets = await gantry('get', 'secrets', '-o', 'yaml');
  assert.equal(secrets.code, 0, secrets.stderr);
  assert.match(secrets.stdout, new RegExp(`token: "\\(secret: ${ROTATED.length} bytes, sha256:${createHash('sha256').update(ROTATED).digest('hex').slice(0, 8)}\\)"`));
  const configMaps = await gantry('get', 'configmaps');
  assert.match(configMaps.stdout, /^default\s+web-config\s+2\s+[0-9a-f]{8}\s+default\/web$/m);
  shown.push(secrets.stdout, configMaps.stdout);
  for (const args of [['get', 'secrets', '-o', 'json'], ['get', 'deployments', '-o', 'yaml'], ['get', 'instances', '-o', 'json'], ['events'], ['rollout', 'history', 'deployment/web'], ['diff']]) {
    const r = await gantry(...args);
    shown.push(r.stdout, r.stderr);
  }
  const forms = [SECRET, ROTATED].flatMap((s) => [s, Buffer.from(s).toString('base64'), Buffer.from(s).toString('hex')]);
  for (const text of shown) for (const form of forms) assert.ok(!text.includes(form), `a secret value (${form.slice(0, 4)}...) was shown: ...${text.slice(Math.max(0, text.indexOf(form) - 80), text.indexOf(form) + 20)}`);
});
