/**
 * The slice of xmpp.js (0.14) this gateway uses, typed once at the seam. The published
 * DefinitelyTyped typings are incomplete under NodeNext; everything else in the code
 * base goes through `src/xmpp/connection.ts`, never through these modules directly.
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
