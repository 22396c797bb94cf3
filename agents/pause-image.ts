import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { LABELS } from './docker-labels.ts';
import { engineMessage } from './image-pull.ts';

/**
 * The pause image of Docker pod sandboxes (docker-sandbox.ts). Its one process only has to exist:
 * it holds the pod's network namespace that the app containers join. Gantry cannot pull
 * registry.k8s.io/pause (no registry, maybe no internet), so the agent makes its own on the engine:
 * a static ELF executable generated here, byte by byte (no compiler on the node), packed as a tar
 * and imported. Unlike the kubelet's pause it reaps no zombies: app containers share only its
 * network namespace, not its PID namespace, so it has no children. It handles no signals either:
 * as PID 1 of its container it ignores SIGTERM, and the sandbox is always removed with SIGKILL.
 */

export type PauseArch = 'x86_64' | 'aarch64';

export const PAUSE_REPOSITORY = 'gantry/pause';

/** The engine's (`docker version` Arch, `docker info` Architecture) or Node's (`process.arch`) name of an architecture. */
export function pauseArch(name: string): PauseArch {
  switch (name) {
    case 'x86_64':
    case 'amd64':
    case 'x64':
      return 'x86_64';
    case 'aarch64':
    case 'arm64':
      return 'aarch64';
    default:
      throw new Error(`no pause executable for architecture ${JSON.stringify(name)}: Gantry makes one for x86_64 (amd64) and aarch64 (arm64) only`);
  }
}

/**
 * Machine code of `for (;;) pause();`. The syscall's return (-EINTR after a signal) lands in the
 * register that holds the syscall number, so the loop sets it again every time.
 */
const CODE: Record<PauseArch, Buffer> = {
  // mov eax, 34 (pause); syscall; jmp back 9 bytes to the mov.
  x86_64: Buffer.from([0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7]),
  // aarch64 has no pause syscall: ppoll(NULL, 0, NULL, NULL) with no fds and no timeout blocks
  // until a signal. mov x0..x3, #0; mov x8, #73 (ppoll); svc #0; b back 6 instructions.
  aarch64: instructions([0xd2800000, 0xd2800001, 0xd2800002, 0xd2800003, 0xd2800928, 0xd4000001, 0x17fffffa]),
};

function instructions(words: number[]): Buffer {
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32LE(w, i * 4));
  return b;
}

const ELF_MACHINE: Record<PauseArch, number> = { x86_64: 62, aarch64: 183 };
const LOAD_ADDRESS = 0x400000;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;

/**
 * A minimal static ELF64 executable (little-endian, ET_EXEC): the ELF header, one PT_LOAD program
 * header mapping the whole file read+execute at 0x400000, then the code, which is the entry point.
 * No sections, no libc, no dynamic loader. Pure: the same bytes every time, so the image's hash is stable.
 */
export function pauseBinary(arch: PauseArch): Buffer {
  const code = CODE[arch];
  const codeOffset = EHDR_SIZE + PHDR_SIZE; // 120: a multiple of 4, as aarch64 instructions must be
  const size = codeOffset + code.length;
  const elf = Buffer.alloc(size);
  // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV; the rest is padding.
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  elf.writeUInt16LE(2, 16); // e_type: ET_EXEC
  elf.writeUInt16LE(ELF_MACHINE[arch], 18); // e_machine
  elf.writeUInt32LE(1, 20); // e_version
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS + codeOffset), 24); // e_entry
  elf.writeBigUInt64LE(BigInt(EHDR_SIZE), 32); // e_phoff: right after this header
  elf.writeBigUInt64LE(0n, 40); // e_shoff: no section headers
  elf.writeUInt32LE(0, 48); // e_flags
  elf.writeUInt16LE(EHDR_SIZE, 52); // e_ehsize
  elf.writeUInt16LE(PHDR_SIZE, 54); // e_phentsize
  elf.writeUInt16LE(1, 56); // e_phnum
  elf.writeUInt16LE(64, 58); // e_shentsize
  elf.writeUInt16LE(0, 60); // e_shnum
  elf.writeUInt16LE(0, 62); // e_shstrndx
  const ph = EHDR_SIZE;
  elf.writeUInt32LE(1, ph); // p_type: PT_LOAD
  elf.writeUInt32LE(5, ph + 4); // p_flags: PF_R | PF_X
  elf.writeBigUInt64LE(0n, ph + 8); // p_offset
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS), ph + 16); // p_vaddr
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS), ph + 24); // p_paddr
  elf.writeBigUInt64LE(BigInt(size), ph + 32); // p_filesz
  elf.writeBigUInt64LE(BigInt(size), ph + 40); // p_memsz
  // 64 KiB: valid whatever the kernel's page size (aarch64 kernels may use 4, 16 or 64 KiB pages).
  elf.writeBigUInt64LE(0x10000n, ph + 48); // p_align
  code.copy(elf, codeOffset);
  return elf;
}

const BLOCK = 512;

/**
 * A ustar archive holding one regular file, `pause` (the image's `/pause`), mode 0755, owned by
 * root, mtime 0 (so equal binaries make equal archives), followed by the two zero blocks that end
 * an archive. Written by hand: one header is all it takes.
 */
export function pauseTar(binary: Buffer, name = 'pause'): Buffer {
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'ascii');
  writeOctal(header, 100, 8, 0o755); // mode
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, binary.length); // size
  writeOctal(header, 136, 12, 0); // mtime
  header.write('0', 156, 1, 'ascii'); // typeflag: regular file
  header.write('ustar\0', 257, 6, 'ascii'); // magic
  header.write('00', 263, 2, 'ascii'); // version
  header.write('root', 265, 32, 'ascii'); // uname
  header.write('root', 297, 32, 'ascii'); // gname
  // The checksum is the sum of the header's bytes with its own field read as eight spaces.
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  const padding = Buffer.alloc((BLOCK - (binary.length % BLOCK)) % BLOCK);
  return Buffer.concat([header, binary, padding, Buffer.alloc(2 * BLOCK)]);
}

/** A numeric header field: octal digits, zero-padded, NUL-terminated. */
function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

/** The image's config: what `docker import --change` sets. */
const CHANGES = ['CMD ["/pause"]'];

export interface PauseImage {
  /** `<repository>:<tag>`, the tag being a short hash of the tar and the config. */
  ref: string;
  tar: Buffer;
  changes: string[];
}

/** What would be imported for this architecture; pure. A new binary gets a new tag, never the old one's. */
export function pauseImage(arch: PauseArch, repository = PAUSE_REPOSITORY): PauseImage {
  const tar = pauseTar(pauseBinary(arch));
  const tag = createHash('sha256').update(tar).update(JSON.stringify(CHANGES)).digest('hex').slice(0, 12);
  const ref = `${repository}:${tag}`;
  return { ref, tar, changes: [...CHANGES, `LABEL ${LABELS.pauseImage}=${ref}`] };
}

/** The engine's architecture: DOCKER_HOST may name an engine on another machine than the agent's. */
export async function engineArch(docker: Docker): Promise<PauseArch> {
  let arch: string;
  try {
    arch = (await docker.version()).Arch;
  } catch (err) {
    throw new Error(`making the pause image: asking the engine for its architecture: ${engineMessage(err)}`, { cause: err });
  }
  return pauseArch(arch);
}

/** Per engine client and image: the ensure in flight, shared by every caller meanwhile. */
const inflight = new WeakMap<Docker, Map<string, Promise<string>>>();

/**
 * Makes the pause image present on the engine and returns its reference: inspected first, imported
 * only when missing. Concurrent callers (several instances starting together) share one import.
 * Errors name the image and what failed.
 */
export async function ensurePauseImage(docker: Docker, repository = PAUSE_REPOSITORY): Promise<string> {
  const image = pauseImage(await engineArch(docker), repository);
  let byRef = inflight.get(docker);
  if (!byRef) inflight.set(docker, (byRef = new Map()));
  const running = byRef.get(image.ref);
  if (running) return running;
  const done = presentOrImport(docker, image).finally(() => byRef.delete(image.ref));
  byRef.set(image.ref, done);
  return done;
}

async function presentOrImport(docker: Docker, image: PauseImage): Promise<string> {
  try {
    await docker.getImage(image.ref).inspect();
    return image.ref;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) {
      throw new Error(`inspecting the pause image ${image.ref}: ${engineMessage(err)}`, { cause: err });
    }
  }
  const [repo, tag] = [image.ref.slice(0, image.ref.lastIndexOf(':')), image.ref.slice(image.ref.lastIndexOf(':') + 1)];
  try {
    const stream = await docker.importImage(Readable.from([image.tar]), { repo, tag, changes: image.changes, message: 'Gantry pod sandbox' });
    await readImport(stream);
  } catch (err) {
    throw new Error(`importing the pause image ${image.ref}: ${engineMessage(err)}`, { cause: err });
  }
  return image.ref;
}

/** The engine reports a failed import in its JSON-lines answer (`error` after a 200), not by status. */
function readImport(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let text = '';
    stream.on('data', (chunk: Buffer | string) => (text += chunk.toString()));
    stream.on('error', reject);
    stream.on('end', () => {
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        let msg: { error?: string; errorDetail?: { message?: string } };
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        const failure = msg.errorDetail?.message ?? msg.error;
        if (failure) return reject(new Error(failure));
      }
      resolve();
    });
  });
}
