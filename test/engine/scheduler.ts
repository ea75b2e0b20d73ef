// The engine's step scheduler: a step starts once the steps it depends on are done, with bounded
// parallelism, and a failure stops new steps while those already running finish (as `pulumi up`).

export interface DagItem {
    key: string;
    /** Keys this item waits for; keys outside the set are ignored. */
    deps: string[];
    run: () => Promise<void>;
}

/**
 * Runs items whose dependencies (keys within the set) have completed, at most `parallel` at once.
 * On the first failure: start nothing new, wait for the in-flight items, resolve with the errors.
 */
export async function runDag(items: DagItem[], parallel: number): Promise<unknown[]> {
    const status = new Map<string, "pending" | "running" | "done" | "failed">();
    for (const it of items) {
        status.set(it.key, "pending");
    }
    const errors: unknown[] = [];
    let running = 0;
    return new Promise<unknown[]>((resolve) => {
        const pump = (): void => {
            if (errors.length === 0) {
                for (const it of items) {
                    if (running >= parallel) {
                        break;
                    }
                    if (status.get(it.key) !== "pending") {
                        continue;
                    }
                    if (!it.deps.every((d) => !status.has(d) || status.get(d) === "done")) {
                        continue;
                    }
                    status.set(it.key, "running");
                    running++;
                    it.run().then(
                        () => {
                            status.set(it.key, "done");
                        },
                        (e: unknown) => {
                            status.set(it.key, "failed");
                            errors.push(e);
                        },
                    ).finally(() => {
                        running--;
                        pump();
                    });
                }
            }
            if (running === 0) {
                resolve(errors);
            }
        };
        pump();
    });
}
