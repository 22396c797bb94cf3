/**
 * The limits on what a manifest may ask for, beyond those the schemas state themselves (their
 * `maximum`, `maxLength` and `maxItems`). Each keeps one bad commit from taking the reconciler or
 * an agent down: timers stay below Node's 2^31-1 ms, quantities add up exactly, and a scale-up
 * stays within what one reconciler can create and track.
 */

/** The schema's hard maximum of spec.replicas (deployment.schema.json); a test keeps them equal. */
export const HARD_MAX_REPLICAS = 1_000_000;
/** The reconciler's cap on spec.replicas unless configured (`--max-replicas`). */
export const DEFAULT_MAX_REPLICAS = 10_000;
/** 1024 cores, in millicores: more than any node offers. */
export const MAX_CPU_MILLI = 1024 * 1000;
/** 1 PiB. */
export const MAX_MEMORY_BYTES = 1024 ** 5;
/** A canary pause with a duration waits at most a week (a pause without one waits for promote). */
export const MAX_PAUSE_SECONDS = 168 * 3600;
/** How deeply collections may nest in a document; real manifests need about 10. */
export const DEFAULT_MAX_DEPTH = 64;
