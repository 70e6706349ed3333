/**
 * The fields of a form or multipart body, collected in linear time and capped in number:
 * a repeated name becomes an array in order of arrival, and a name such as `__proto__`
 * stays an ordinary field.
 */
import { GatewayError } from "../core/errors.ts";

/** Most fields (repeats included) a form or multipart body may have. */
export const MAX_FIELDS = 1000;

/** Collects named values in order; `build()` yields the object of them. */
export class FieldCollector {
  readonly #values = new Map<string, unknown[]>();
  readonly #what: string;
  readonly #max: number;
  #count = 0;

  /** `what` names the body in the 413 ("the form", "the multipart body"). */
  constructor(what: string, max = MAX_FIELDS) {
    this.#what = what;
    this.#max = max;
  }

  /** Adds one value; returns a setter for values that arrive later (multipart files). */
  add(name: string, value: unknown): (later: unknown) => void {
    if (++this.#count > this.#max) {
      throw new GatewayError(
        "PAYLOAD_TOO_LARGE",
        `${this.#what} has more than ${this.#max} fields; at most ${this.#max} are accepted`,
      );
    }
    let list = this.#values.get(name);
    if (list === undefined) {
      list = [];
      this.#values.set(name, list);
    }
    const at = list.push(value) - 1;
    const slot = list;
    return (later) => {
      slot[at] = later;
    };
  }

  /** How many values were added. */
  get size(): number {
    return this.#count;
  }

  /** The fields as an object: one value as itself, repeats as an array. */
  build(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, list] of this.#values) {
      // defineProperty: a field named __proto__ stays an ordinary field.
      Object.defineProperty(out, name, {
        value: list.length === 1 ? list[0] : list,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
}
