/**
 * The slice of autocannon 9 the benchmark uses (the package ships no types, and
 * DefinitelyTyped's describe version 7).
 */
declare module "autocannon" {
  interface Options {
    url: string;
    method?: string;
    connections?: number;
    duration?: number;
    pipelining?: number;
    headers?: Record<string, string>;
    body?: string;
  }
  interface Histogram {
    average: number;
    total: number;
    p50: number;
    p99: number;
  }
  interface Result {
    requests: Histogram;
    latency: Histogram;
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    "2xx": number;
    statusCodeStats?: Record<string, { count: number }>;
  }
  /** Runs a load test; resolves with its result. */
  function autocannon(opts: Options): Promise<Result>;
  export default autocannon;
}
