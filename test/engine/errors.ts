/** The message of anything thrown or rejected, as the engine reports it. */
export function errorMessage(e: unknown): string {
    return e instanceof Error ? e.message : String(e);
}
