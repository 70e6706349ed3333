/**
 * Why HTTP could not listen, in terms of the settings that choose where it listens: a
 * second gateway or demo on the same port should say `HTTP_PORT`, not a bare EADDRINUSE.
 */

/** HTTP could not listen on HTTP_HOST:HTTP_PORT; `setting` is the one to change. */
export class ListenError extends Error {
  readonly setting: "HTTP_HOST" | "HTTP_PORT";
  constructor(message: string, setting: "HTTP_HOST" | "HTTP_PORT", cause: unknown) {
    super(message, { cause });
    this.name = "ListenError";
    this.setting = setting;
  }
}

/** Turns the error of a failed listen on `host`:`port` into one naming the setting to change. */
export function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as { code?: string } | undefined)?.code;
  const on = host === "0.0.0.0" || host === "::" ? `${host} (every interface)` : host;
  if (code === "EADDRINUSE")
    return new ListenError(
      `HTTP_PORT ${port} on ${on} is already in use (another gateway or demo?): set HTTP_PORT to a free port`,
      "HTTP_PORT",
      err,
    );
  if (code === "EACCES")
    return new ListenError(
      `HTTP_PORT ${port} on ${on} needs privileges this process lacks: set HTTP_PORT to 1024 or above (10080 is the default), or grant CAP_NET_BIND_SERVICE`,
      "HTTP_PORT",
      err,
    );
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN")
    return new ListenError(
      `HTTP_HOST ${host} is not an address of this machine: set HTTP_HOST to one of its addresses, 127.0.0.1 for this machine only, or 0.0.0.0 for every interface`,
      "HTTP_HOST",
      err,
    );
  return err;
}
