import { sshTransport } from "./ssh";
import type { Connection, Transport } from "./transport";

export type { Connection, ExecOptions, ExecResult, Transport, UploadResult } from "./transport";
export { closeAllConnections, handshakeCount } from "./ssh";

/** Makes the transport for a connection in place of the SSH one (tests: the local transport under a temp root). */
export type TransportFactory = (conn: Connection) => Transport | Promise<Transport>;

interface TransportOverride {
    __complinistTransportFactory?: TransportFactory;
}

/**
 * Routes every openTransport through `factory` until called again with undefined.
 * Kept on `globalThis`: providers are serialized, and each deserialized copy would
 * have its own module-level variable.
 */
export function useTransportFactory(factory: TransportFactory | undefined): void {
    const g = globalThis as unknown as TransportOverride;
    if (factory) g.__complinistTransportFactory = factory;
    else delete g.__complinistTransportFactory;
}

/**
 * The transport for a connection. Async so a transport may do setup work; the SSH one
 * connects lazily on first exec/upload, so opening is cheap and never touches the network.
 */
export async function openTransport(conn: Connection): Promise<Transport> {
    const override = (globalThis as unknown as TransportOverride).__complinistTransportFactory;
    if (override) return override(conn);
    return sshTransport(conn);
}
