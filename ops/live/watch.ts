import type { LivePoller } from "./poller";
import { renderLiveTable } from "./table";

/**
 * `npm run status -- --stack X --watch`: the table redrawn in place every interval until
 * Ctrl-C, with plain ANSI: the cursor hidden while it draws, each frame written from the top
 * left (CSI H), every line cleared to its end and the screen below the last one, so a frame
 * shorter than the one before leaves nothing behind. Ctrl-C (or SIGTERM) shows the cursor again
 * and ends with 0.
 */

export const ANSI = {
    hideCursor: "\x1b[?25l",
    showCursor: "\x1b[?25h",
    clearScreen: "\x1b[2J",
    home: "\x1b[H",
    clearLine: "\x1b[K",
    clearBelow: "\x1b[J",
} as const;

/** Where frames go and how wide they may be. */
export interface Screen {
    write(text: string): void;
    /** Columns; undefined when not a terminal. */
    readonly columns?: number | undefined;
}

/** One frame: from the top left, each line cleared after it, the rest of the screen cleared. */
export function frame(lines: readonly string[]): string {
    return ANSI.home + lines.map((l) => l + ANSI.clearLine).join("\n") + "\n" + ANSI.clearBelow;
}

/** Redraws until `stopped` resolves (the script wires it to SIGINT and SIGTERM); returns the exit code, 0. */
export async function runWatch(poller: LivePoller, screen: Screen, opts: { readonly intervalMs: number; readonly stopped: Promise<void> }): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const draw = (): void => {
        const lines = renderLiveTable(poller.view(), { width: screen.columns ?? 160, history: poller.history, intervalMs: opts.intervalMs });
        screen.write(frame(lines));
    };
    screen.write(ANSI.hideCursor + ANSI.clearScreen);
    try {
        poller.start();
        draw();
        timer = setInterval(draw, opts.intervalMs);
        await opts.stopped;
        return 0;
    } finally {
        if (timer) clearInterval(timer);
        poller.stop();
        screen.write(ANSI.showCursor + "\n");
    }
}
