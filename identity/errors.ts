/** Base class of every ward error: carries a stable `name` and keeps the cause. */
export class WardError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A label or label set that cannot be parsed; `input` is the offending text. */
export class LabelParseError extends WardError {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid label ${JSON.stringify(input)}: ${reason}`);
  }
}
