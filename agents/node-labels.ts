/** Labels an agent gives its node besides the operator's (`gantry agent --labels`). */
const ARCH: Partial<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** kubernetes.io/os, kubernetes.io/arch (Go's names, as the kubelet sets them) and kubernetes.io/hostname. */
export function wellKnownNodeLabels(node: string): Record<string, string> {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return { 'kubernetes.io/os': os, 'kubernetes.io/arch': ARCH[process.arch] ?? process.arch, 'kubernetes.io/hostname': node };
}
