import { hostLayout } from "../render/layout";
import { HostReadAnswer, parseHostRead, renderHostRead } from "../render/hostRead";
import { trace } from "../transport/trace";
import { connectForRead, HostTarget, machineKey, run, sharedReads } from "./host";

/** What every resource of a host reads from the one host read: the answer and the host's name for errors. */
export interface HostRead extends HostReadAnswer {
    readonly host: string;
}

/** The layout a resource reads: one host read per machine and layout (a renamed service is another). */
export interface ReadOf {
    readonly host: HostTarget;
    readonly privateKey: string;
    readonly baseDir: string;
    readonly service: string;
}

/**
 * The host's whole state for a refresh, read once per machine and shared by every resource of it
 * (ServiceUnit, ReleaseDir, Activation read from the same answer): the engine refreshes them at
 * once, in the one `pulumi-nodejs` provider process, and the first read's exec serves the rest.
 * It lasts while nothing in this process writes to the machine: every script or upload through
 * connect() drops it (forgetReads), so a later read sees the host anew. A failed read is not kept.
 */
export function readHostOnce(r: ReadOf): Promise<HostRead> {
    const machine = machineKey(r.host);
    const key = `${machine} ${r.baseDir} ${r.service}`;
    const reads = sharedReads();
    const kept = reads.get(key);
    if (kept !== undefined) return kept.read as Promise<HostRead>;
    const read = (async (): Promise<HostRead> => {
        const t = await connectForRead(r.host, r.privateKey);
        const l = hostLayout(r.baseDir, r.service, t.root);
        trace("host-read", { host: r.host.name });
        const out = (await run(t, "reading the host's state", renderHostRead(l, r.service, t.systemd))).stdout;
        return { ...parseHostRead(out, t.host), host: t.host };
    })();
    reads.set(key, { machine, read });
    read.catch(() => {
        if (reads.get(key)?.read === read) reads.delete(key);
    });
    return read;
}
