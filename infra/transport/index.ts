import { localTransport } from "./local";
import { sshTransport } from "./ssh";
import type { Connection, Transport } from "./transport";

export type { Connection, ExecOptions, ExecResult, Transport, UploadResult } from "./transport";
export { closeAllConnections, handshakeCount } from "./ssh";

/**
 * The transport for a connection. Async so a transport may do setup work; the SSH one
 * connects lazily on first exec/upload, so opening is cheap and never touches the network.
 */
export async function openTransport(conn: Connection): Promise<Transport> {
    switch (conn.kind) {
        case "ssh":
            return sshTransport(conn);
        case "local":
            return localTransport(conn);
        default: {
            const never: never = conn;
            throw new Error(`unknown connection kind ${JSON.stringify((never as { kind?: unknown }).kind)}`);
        }
    }
}
