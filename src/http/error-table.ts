/**
 * The shape of each surface's error table (oci-errors, oauth-errors, api-errors): every code has its
 * status, and may list the other statuses it is allowed to take; an error's status is always one of these.
 */
export interface ErrorTableEntry {
  status: number;
  message?: string;
  otherStatuses?: readonly number[];
}

export type ErrorTable = Record<string, ErrorTableEntry>;

/** The statuses code `C` of table `T` may take: its own, or one of its `otherStatuses`. */
export type StatusOf<T extends ErrorTable, C extends keyof T> =
  | T[C]["status"]
  | (T[C] extends { otherStatuses: readonly (infer S)[] } ? S : never);

/** Whether `status` is one the table allows for `code`. */
export function allowsStatus(table: ErrorTable, code: string, status: number): boolean {
  const entry = table[code];
  return entry !== undefined && (entry.status === status || (entry.otherStatuses ?? []).includes(status));
}

/** The code whose own status is `status`, if one is. */
export function codeWithStatus<T extends ErrorTable>(table: T, status: number): keyof T | undefined {
  return Object.keys(table).find((code) => table[code]!.status === status);
}
