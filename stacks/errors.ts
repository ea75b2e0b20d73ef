/**
 * The message of anything thrown or rejected (a non-Error value as its string): the one
 * helper for it, shared by the program, the operator helpers (ops/, scripts/) and the tests.
 * A pure function, so dynamic providers may call it too.
 */
export function errorMessage(e: unknown): string {
    return e instanceof Error ? e.message : String(e);
}
