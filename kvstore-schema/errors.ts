/**
 * Errors of the etcd wire contract. kvstore-schema is a leaf (it imports no other ward folder),
 * so its base class mirrors identity's WardError (same `name` and `cause` handling).
 */
export class SchemaError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A key that does not belong to the layout, or a key part that cannot be encoded. */
export class KeyError extends SchemaError {
  constructor(
    readonly key: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`bad key ${JSON.stringify(key)}: ${reason}`, options);
  }
}

/** A value that is not msgpack, or whose shape does not match its kind. */
export class DecodeError extends SchemaError {
  constructor(
    readonly kind: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot decode ${kind} value: ${reason}`, options);
  }
}

/** A well-formed value written by a newer (or unknown) schema version: skip it with a warning. */
export class UnknownVersionError extends DecodeError {
  constructor(
    kind: string,
    readonly version: unknown,
  ) {
    super(kind, `unknown schema version ${JSON.stringify(version)}`);
  }
}
