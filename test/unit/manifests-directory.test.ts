import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateDirectory } from '../../reconciler/manifests/index.ts';

const namespace = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;
let repo: string;

before(async () => {
  repo = await mkdtemp(path.join(tmpdir(), 'gantry-validate-'));
  const files: Record<string, string> = {
    'README.md': '# docs',
    'deploy/ns.yaml': namespace('team-a'),
    'deploy/nested/more/ns.json': JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-b' } }),
    'deploy/bad.yml': 'apiVersion: v1\nkind: Namespace\nmetadata: {name: Bad}\n',
    'deploy/huge.yaml': `# ${'x'.repeat(2048)}\n`,
    'other/ns.yaml': namespace('team-c'),
    '.git/config.yaml': 'kind: NotAManifest',
    'node_modules/pkg/x.yaml': 'kind: NotAManifest',
  };
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(repo, rel)), { recursive: true });
    await writeFile(path.join(repo, rel), content);
  }
  await symlink(path.join(repo, 'other'), path.join(repo, 'deploy/linked'));
});

after(async () => {
  await rm(repo, { recursive: true, force: true });
});

test('validates every manifest under a folder, skipping .git, node_modules and symlinks', async () => {
  const result = await validateDirectory(repo, '.', { maxFileBytes: 1024 });
  assert.deepEqual(
    result.objects.map((o) => `${o.file} ${o.manifest.metadata.name}`),
    ['deploy/ns.yaml team-a', 'deploy/nested/more/ns.json team-b', 'other/ns.yaml team-c'],
  );
  assert.deepEqual(
    result.errors.map((e) => e.toString()),
    [
      "deploy/bad.yml:3:18 Namespace Bad /metadata/name: must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
      'deploy/huge.yaml:1:1: file is 2051 bytes (2.0Ki), larger than the limit of 1024 bytes (1Ki)',
    ],
  );
});

test('a sub-path limits the search; paths stay relative to the repository', async () => {
  const result = await validateDirectory(repo, 'other');
  assert.deepEqual(
    result.objects.map((o) => o.file),
    ['other/ns.yaml'],
  );
  assert.deepEqual(result.errors, []);
});

test('a sub-path outside the folder is refused', async () => {
  await assert.rejects(validateDirectory(path.join(repo, 'deploy'), '../other'), /is outside/);
});
