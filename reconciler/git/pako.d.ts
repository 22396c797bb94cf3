/**
 * The part of pako 1.x (a dependency of isomorphic-git, pure-JS zlib) that pack-guard.ts uses:
 * its streaming Inflate, which says where a deflate stream ended in its input (Node's zlib does
 * not, synchronously).
 */
declare module 'pako' {
  export interface Inflate {
    /** Returns false once the stream has ended or failed; `mode` false means no flush. */
    push(data: Uint8Array, mode?: boolean | number): boolean;
    /** Called with each output chunk; replace it to consume output instead of collecting it. */
    onData(chunk: Uint8Array): void;
    onEnd(status: number): void;
    /** Non-zero after a zlib error, with `msg`. */
    err: number;
    msg: string;
    /** True once the end of the deflate stream was reached (or an error stopped it). */
    ended: boolean;
    /** Input bytes of the last push not consumed (those after the end of the stream). */
    strm: { avail_in: number };
  }
  const pako: { Inflate: new (options?: { chunkSize?: number }) => Inflate };
  export default pako;
}
