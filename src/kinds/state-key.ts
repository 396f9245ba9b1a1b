/**
 * A key for state a kind keeps for the length of one dump or one restore.
 * The kind owns the key (a module constant), so the value's type travels
 * with it and no other module can read or clobber it by spelling a string.
 */
export interface StateKey<T> {
  readonly name: string;
  /** never set: carries T */
  readonly __value?: T;
}

export function stateKey<T>(name: string): StateKey<T> {
  return { name };
}
