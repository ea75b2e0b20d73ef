import type { StackConfig } from "../../stacks/config";
import { parseStatusAnswer } from "../../infra/agent/state";
import { hostLayout } from "../../infra/render/layout";
import { HOST_STATE_TIMEOUT_S, renderStatusScript } from "../../infra/render/status";
import type { StatusTarget } from "../status";
import { History } from "./history";
import { liveView, sampleOf, type HostPoll, type LiveView } from "./model";

/**
 * Asks every host for its `state` once per interval, each host on its own loop over its pooled
 * SSH connection (one exec at a time per host, so one connection and never a pile of sessions):
 * a slow host delays only its own row, which the view shows stale with its age.
 */

/** One answer may take the agent's bound on the host plus the SSH round trip (as `npm run status`). */
const EXEC_TIMEOUT_MS = (HOST_STATE_TIMEOUT_S + 15) * 1000;

/** What the dashboard's charts keep: the last five minutes. */
export const HISTORY_MS = 5 * 60 * 1000;

export interface PollerOptions {
    readonly intervalMs: number;
    /** The clock (ms, epoch); tests move it. */
    readonly now?: () => number;
}

export class LivePoller {
    readonly history = new History(HISTORY_MS);
    private readonly polls = new Map<string, HostPoll>();
    private running = false;
    private readonly loops: Array<Promise<void>> = [];
    private readonly wakers = new Set<() => void>();
    private readonly script: string;
    private readonly now: () => number;

    constructor(
        private readonly config: StackConfig,
        private readonly targets: readonly StatusTarget[],
        private readonly opts: PollerOptions,
    ) {
        this.script = renderStatusScript(hostLayout(config.baseDir, config.service.name), { service: config.service.name, port: config.service.port, healthPath: config.health.path });
        this.now = opts.now ?? Date.now;
        for (const t of targets) this.polls.set(t.name, { host: t.name, address: t.address });
    }

    start(): void {
        if (this.running) return;
        this.running = true;
        for (const t of this.targets) this.loops.push(this.loop(t));
    }

    /**
     * Stops asking. An exec in flight is not waited for (a hung host would hold Ctrl-C up to its
     * timeout): closing the connections ends it. `settled` resolves once every loop has ended.
     */
    stop(): void {
        this.running = false;
        for (const wake of [...this.wakers]) wake();
    }

    settled(): Promise<void> {
        return Promise.all(this.loops).then(() => undefined);
    }

    /** What is known now. */
    view(): LiveView {
        return liveView(this.config, this.targets.map((t) => this.polls.get(t.name) as HostPoll), this.now());
    }

    /** Asks one host once: its answer, or why there is none, replaces what was known of it. */
    async pollOnce(t: StatusTarget): Promise<void> {
        const prev = this.polls.get(t.name) as HostPoll;
        try {
            const r = await t.transport.exec(this.script, { timeoutMs: EXEC_TIMEOUT_MS });
            if (r.code !== 0) throw new Error(`the status script failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-400)}`);
            const state = parseStatusAnswer(r.stdout, t.name);
            const sample = sampleOf(t.name, t.address, state, this.config, this.now());
            this.polls.set(t.name, { host: t.name, address: t.address, last: sample });
            this.history.add(t.name, sample.at, this.view().hosts.find((h) => h.host === t.name)?.releases ?? []);
        } catch (e) {
            const error = e instanceof Error ? e.message : String(e);
            this.polls.set(t.name, { ...prev, error, errorAt: this.now() });
        }
    }

    private async loop(t: StatusTarget): Promise<void> {
        while (this.running) {
            const started = this.now();
            await this.pollOnce(t);
            const wait = this.opts.intervalMs - (this.now() - started);
            if (wait > 0 && this.running) await this.sleep(wait);
        }
    }

    private sleep(ms: number): Promise<void> {
        return new Promise((resolve) => {
            const wake = (): void => {
                clearTimeout(timer);
                this.wakers.delete(wake);
                resolve();
            };
            const timer = setTimeout(wake, ms);
            this.wakers.add(wake);
        });
    }
}
