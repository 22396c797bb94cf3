import assert from 'node:assert/strict';
import { test } from 'node:test';
import { wellKnownNodeLabels } from '../../agents/node-labels.ts';

test("a node carries Kubernetes' well-known labels, with Go's names for the architecture", () => {
  const labels = wellKnownNodeLabels('node-1');
  assert.equal(labels['kubernetes.io/hostname'], 'node-1');
  assert.equal(labels['kubernetes.io/os'], process.platform === 'win32' ? 'windows' : process.platform);
  assert.equal(labels['kubernetes.io/arch'], ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch);
});
