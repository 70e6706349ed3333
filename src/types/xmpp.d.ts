/**
 * The slice of xmpp.js (0.14) this gateway uses, typed once at the seam. The published
 * DefinitelyTyped typings are incomplete under NodeNext; everything else in the code
 * base goes through `src/xmpp/client.ts` and `stream.ts`, never these modules directly.
 */
declare module "@xmpp/xml" {
  /** An XML element (ltx). */
  export class Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<Element | string>;
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    toString(): string;
  }
  type Child = Element | string | null | undefined | false;
  /** Builds an element: `xml(name, attrs, ...children)`. */
  export function xml(
    name: string,
    attrs?: Record<string, string | number | undefined> | null,
    ...children: Array<Child | Child[]>
  ): Element;
  export default xml;
}

declare module "@xmpp/client" {
  import type { EventEmitter } from "node:events";
  import type { Element } from "@xmpp/xml";

  export { xml } from "@xmpp/xml";

  /** A JID object as parsed by @xmpp/jid. */
  export interface JID {
    toString(): string;
    bare(): JID;
    getLocal(): string;
    getDomain(): string;
    getResource(): string;
  }

  /** SASL `authenticate` callback handed to a credentials function. */
  export type Authenticate = (
    credentials: { username: string; password: string },
    mechanism: string,
    userAgent?: Element,
  ) => Promise<void>;

  export interface ClientOptions {
    service?: string;
    domain?: string;
    resource?: string;
    username?: string;
    password?: string;
    timeout?: number;
    credentials?: (
      authenticate: Authenticate,
      mechanisms: string[],
      fast: unknown,
      entity: Client,
    ) => Promise<void>;
  }

  export interface StreamManagement extends EventEmitter {
    enabled: boolean;
    id: string;
    timeout: number;
    requestAckInterval: number;
    outbound_q: Array<{ stanza: Element }>;
  }

  export interface Client extends EventEmitter {
    jid: JID | null;
    status: string;
    options: ClientOptions & { service?: string; domain?: string };
    /** xmpp.js's socket wrapper; `.socket` is the node:net or node:tls socket. */
    socket: { secure?: boolean; socket?: { setNoDelay?(noDelay: boolean): unknown } | null } | null;
    isSecure(): boolean;
    start(): Promise<JID>;
    stop(): Promise<void>;
    disconnect(): Promise<void>;
    send(element: Element): Promise<void>;
    sendMany(elements: Element[]): Promise<void>;
    socketParameters(service: string): Record<string, unknown> | undefined;
    reconnect: EventEmitter & {
      delay: number;
      stop(): void;
      start(): void;
      reconnect(): Promise<void>;
    };
    streamManagement: StreamManagement;
    iqCaller: { request(stanza: Element, timeout?: number): Promise<Element> };
    /** saslmechanisms' Factory; `_mechs` is its ordered registry (first match wins). */
    saslFactory: { _mechs: Array<{ name: string; mech: new () => unknown }> };
  }

  export function client(options: ClientOptions): Client;
}

declare module "@xmpp/client-core" {
  import type { Client as C } from "@xmpp/client";
  /** The entity: a Connection with pluggable transports. */
  export const Client: new (options: {
    service: string;
    domain: string;
    timeout: number;
  }) => C & { transports: unknown[] };
  export type Client = C & { transports: unknown[] };
}

declare module "@xmpp/connection-tcp/Socket.js" {
  import { Socket } from "node:net";
  /** node:net's socket, marked insecure. */
  export default class TcpSocket extends Socket {
    constructor(...args: unknown[]);
    secure: boolean;
  }
}

declare module "@xmpp/tcp/lib/Connection.js" {
  /** The `xmpp://` transport. */
  export default class ConnectionTCP {
    Socket: unknown;
    socketParameters(service: string): Record<string, unknown> | undefined;
  }
}

declare module "@xmpp/tls/lib/Connection.js" {
  /** The `xmpps://` (direct TLS) transport. */
  export default class ConnectionTLS {
    Socket: unknown;
    socketParameters(service: string): Record<string, unknown> | undefined;
  }
}

declare module "@xmpp/tls/lib/Socket.js" {
  import { EventEmitter } from "node:events";
  import type { TLSSocket } from "node:tls";
  /** xmpp.js's wrapper of a TLS socket. */
  export default class TlsSocket extends EventEmitter {
    socket: TLSSocket | null;
    connect(params: unknown): void;
  }
}

declare module "@xmpp/middleware" {
  /** Incoming and outgoing stanza middleware. */
  export default function middleware(deps: { entity: unknown }): unknown;
}

declare module "@xmpp/stream-features" {
  /** Stream feature negotiation over middleware. */
  export default function streamFeatures(deps: { middleware: unknown }): unknown;
}

declare module "@xmpp/iq/caller.js" {
  import type { Element } from "@xmpp/xml";
  /** Sends iqs and matches their replies. */
  export default function iqCaller(deps: { middleware: unknown; entity: unknown }): {
    request(stanza: Element, timeout?: number): Promise<Element>;
  };
}

declare module "@xmpp/iq/callee.js" {
  /** Answers iqs. */
  export default function iqCallee(deps: { middleware: unknown; entity: unknown }): {
    get(ns: string, name: string, handler: () => unknown): void;
  };
}

declare module "@xmpp/resolve" {
  /** DNS SRV resolution of the service. */
  export default function resolve(deps: { entity: unknown }): unknown;
}

declare module "@xmpp/starttls" {
  /** The STARTTLS stream feature. */
  export default function starttls(deps: { streamFeatures: unknown }): unknown;
}

declare module "@xmpp/sasl" {
  /** The SASL stream feature (RFC 6120 §6). */
  export default function sasl(
    deps: { streamFeatures: unknown; saslFactory: unknown },
    onAuthenticate: (
      authenticate: (
        creds: { username: string; password: string },
        mechanism: string,
      ) => Promise<void>,
      mechanisms: string[],
      fast: unknown,
      entity: import("@xmpp/client-core").Client,
    ) => Promise<void>,
  ): unknown;
}

declare module "@xmpp/sasl-plain" {
  /** Registers PLAIN with a SASL factory. */
  export default function saslPlain(factory: unknown): void;
}

declare module "@xmpp/resource-binding" {
  /** Resource binding (RFC 6120 §7). */
  export default function resourceBinding(
    deps: { iqCaller: unknown; streamFeatures: unknown },
    resource: string,
  ): unknown;
}

declare module "@xmpp/stream-management" {
  import type { StreamManagement } from "@xmpp/client";
  /** XEP-0198 stream management. */
  export default function streamManagement(deps: {
    streamFeatures: unknown;
    entity: unknown;
    middleware: unknown;
  }): StreamManagement;
}

declare module "saslmechanisms" {
  /** A registry of SASL mechanisms (first registered of a name wins). */
  export default class Factory {
    use(name: string, mech: unknown): this;
  }
}
